package memdrv

import (
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
)

// The in-memory call managers speak the Q.2931 address family with the
// encodings of package q2931, as the network's call managers do: the same
// call parameters, SAPs and activation parameters work with either.

// AF is the address family the in-memory call managers register: Q.2931,
// UNI 3.1 (q2931.AF).
var AF = q2931.AF

// FabricNode is the node name in the destinations CallParams builds. The
// fabric is one switch: every service registered on it is reachable from
// every call manager attached to it, whatever node a destination names.
const FabricNode = "local"

// CallParams builds call parameters that call service on the fabric with
// the given transmit/receive flowspecs (q2931.CallParams to FabricNode).
func CallParams(service string, tx, rx ndis.Flowspec) *ndis.CallParameters {
	return q2931.CallParams(FabricNode, service, tx, rx, false)
}

// ServiceSap builds the CO_SAP for a service name (q2931.ServiceSap).
func ServiceSap(service string) *ndis.CoSap { return q2931.ServiceSap(service) }

// serviceOf extracts the called service from call parameters.
func serviceOf(p *ndis.CallParameters) (string, bool) {
	b, ok := q2931.DestinationService(p)
	return string(b), ok
}

// VCIOf returns the connection identifier a call manager put in activation
// parameters (q2931.Media).
func VCIOf(p *ndis.CallParameters) (uint32, bool) {
	conn, _, ok := q2931.Media(p)
	return conn, ok
}
