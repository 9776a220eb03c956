package callctl

// The CoNDIS side of a call's parameters: what the client is offered, how
// a CONNECT carries its answer, and the SDU sizes a path can carry.

import (
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/uni"
)

// DatagramLimit is a link that carries data as datagrams of at most
// MaxDatagramPayload octets (a transport link, for mcm).
type DatagramLimit interface{ MaxDatagramPayload() int }

// BuildOffer returns the offer of an incoming call, from the pool: the
// client is offered tx and rx on connection conn (with the ParamMedia
// flags mediaFlags), and the calling node's name, held in the offer when
// it fits.
func BuildOffer(tx, rx ndis.Flowspec, conn uint32, calling string, mediaFlags byte) *Offer {
	o := NewOffer(tx, rx)
	name := o.Calling[:0]
	if len(calling) > len(o.Calling) {
		name = nil
	}
	name = append(name, calling...)
	o.CM = ndis.CallManagerParameters{Transmit: tx, Receive: rx,
		CallMgrSpecific: ndis.SpecificParameters{ParamType: q2931.ParamCallingParty, Parameters: name[:len(name):len(name)]}}
	o.Blob = q2931.MediaArray(conn, mediaFlags)
	o.Media = ndis.MediaParameters{Flags: ndis.TransmitVC | ndis.ReceiveVC,
		MediaSpecific: ndis.SpecificParameters{ParamType: q2931.ParamMedia, Parameters: o.Blob[:]}}
	o.Params = ndis.CallParameters{CallMgrParameters: &o.CM, MediaParameters: &o.Media}
	return o
}

// ConnectIEs is the storage of a CONNECT's optional IEs (Message). A
// call manager reuses one for every CONNECT: uni.Link.Accept keeps
// nothing of the message once its Output is carried out.
type ConnectIEs struct {
	m   uni.Message
	ci  uni.ConnectionID
	aal uni.AALParameters
}

// Message fills s with a CONNECT's optional IEs, the connection identifier
// and the AAL parameters, and returns the message (s's; valid until s is
// filled again).
func (s *ConnectIEs) Message(conn uint32, fwd, bwd ndis.Flowspec, reliable bool) *uni.Message {
	s.ci = q2931.ConnectionID(conn)
	s.aal = uni.AALParameters{}
	q2931.FillAAL(&s.aal, fwd, bwd, reliable)
	s.m = uni.Message{ConnectionID: &s.ci, AAL: &s.aal}
	return &s.m
}

// Narrowing reports whether a client's change of an offered flowspec is
// one Q.2931 can carry back in the CONNECT: a smaller MaxSduSize, nothing
// else that is signalled.
func Narrowing(offered, n ndis.Flowspec) bool {
	return n.ServiceType == offered.ServiceType && n.TokenRate == offered.TokenRate &&
		n.TokenBucketSize == offered.TokenBucketSize && n.PeakBandwidth == offered.PeakBandwidth &&
		(n.ServiceType == ndis.ServiceNoTraffic || (n.MaxSduSize > 0 && n.MaxSduSize <= offered.MaxSduSize))
}

// NegotiateSDU fills in or checks the MaxSduSize of each direction against
// what the path carries: MaxAAL5SDU, and for a datagram VC the link's
// MaxDatagramPayload. An unspecified size becomes the limit; a larger one
// is refused unless the media parameters allow ROUND_DOWN_FLOW. A change
// is flagged CALL_PARAMETERS_CHANGED.
func NegotiateSDU(p *ndis.CallParameters, l DatagramLimit, reliable, multipoint bool) ndis.Status {
	limit := uint32(q2931.MaxAAL5SDU)
	if !reliable && l != nil {
		limit = min(limit, uint32(l.MaxDatagramPayload()))
	}
	round := p.MediaParameters != nil && p.MediaParameters.Flags&ndis.RoundDownFlow != 0
	cm := p.CallMgrParameters
	fix := func(f ndis.Flowspec) (uint32, ndis.Status) {
		switch {
		case f.ServiceType == ndis.ServiceNoTraffic:
			return f.MaxSduSize, ndis.StatusSuccess
		case !q2931.SDUSpecified(f.MaxSduSize):
			return limit, ndis.StatusSuccess
		case f.MaxSduSize > limit && !round:
			return 0, ndis.StatusAalParamsUnsupported
		}
		return min(f.MaxSduSize, limit), ndis.StatusSuccess
	}
	tx, st := fix(cm.Transmit)
	if st != ndis.StatusSuccess {
		return st
	}
	rx := cm.Receive.MaxSduSize
	if !multipoint {
		if rx, st = fix(cm.Receive); st != ndis.StatusSuccess {
			return st
		}
	}
	if tx != cm.Transmit.MaxSduSize || rx != cm.Receive.MaxSduSize {
		cm.Transmit.MaxSduSize, cm.Receive.MaxSduSize = tx, rx
		p.Flags |= ndis.CallParametersChanged
	}
	return ndis.StatusSuccess
}
