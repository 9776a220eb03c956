package callctl

import (
	"strings"
	"testing"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
)

type datagrams int

func (d datagrams) MaxDatagramPayload() int { return int(d) }

func TestNegotiateSDU(t *testing.T) {
	be := func(sdu uint32) ndis.Flowspec {
		return ndis.Flowspec{ServiceType: ndis.ServiceBestEffort, MaxSduSize: sdu}
	}
	none := ndis.Flowspec{ServiceType: ndis.ServiceNoTraffic}
	for _, tc := range []struct {
		name                string
		tx, rx              ndis.Flowspec
		limit               DatagramLimit
		reliable, mp, round bool
		st                  ndis.Status
		wantTx, wantRx      uint32
		changed             bool
	}{
		{name: "unspecified takes the datagram limit", tx: be(0), rx: be(0), limit: datagrams(1200), st: ndis.StatusSuccess, wantTx: 1200, wantRx: 1200, changed: true},
		{name: "reliable ignores datagrams", tx: be(0), rx: be(9180), limit: datagrams(1200), reliable: true, st: ndis.StatusSuccess, wantTx: q2931.MaxAAL5SDU, wantRx: 9180, changed: true},
		{name: "too large is refused", tx: be(1500), rx: be(100), limit: datagrams(1200), st: ndis.StatusAalParamsUnsupported, wantTx: 1500, wantRx: 100},
		{name: "too large is rounded down when allowed", tx: be(1500), rx: be(100), limit: datagrams(1200), round: true, st: ndis.StatusSuccess, wantTx: 1200, wantRx: 100, changed: true},
		{name: "fits: unchanged", tx: be(1000), rx: be(1000), limit: datagrams(1200), st: ndis.StatusSuccess, wantTx: 1000, wantRx: 1000},
		{name: "no traffic is left alone", tx: none, rx: be(1000), limit: datagrams(1200), st: ndis.StatusSuccess, wantTx: 0, wantRx: 1000},
		{name: "multipoint receive is not checked", tx: be(1000), rx: be(5000), limit: datagrams(1200), mp: true, st: ndis.StatusSuccess, wantTx: 1000, wantRx: 5000},
		{name: "no link: the AAL5 limit", tx: be(70000), rx: be(0), st: ndis.StatusAalParamsUnsupported, wantTx: 70000, wantRx: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cm := &ndis.CallManagerParameters{Transmit: tc.tx, Receive: tc.rx}
			p := &ndis.CallParameters{CallMgrParameters: cm}
			if tc.round {
				p.MediaParameters = &ndis.MediaParameters{Flags: ndis.RoundDownFlow}
			}
			if st := NegotiateSDU(p, tc.limit, tc.reliable, tc.mp); st != tc.st {
				t.Fatalf("status %v, want %v", st, tc.st)
			}
			if cm.Transmit.MaxSduSize != tc.wantTx || cm.Receive.MaxSduSize != tc.wantRx {
				t.Errorf("MaxSduSize tx %d rx %d, want %d %d", cm.Transmit.MaxSduSize, cm.Receive.MaxSduSize, tc.wantTx, tc.wantRx)
			}
			if got := p.Flags&ndis.CallParametersChanged != 0; got != tc.changed {
				t.Errorf("CALL_PARAMETERS_CHANGED %v, want %v", got, tc.changed)
			}
		})
	}
}

func TestNarrowing(t *testing.T) {
	offered := ndis.Flowspec{ServiceType: ndis.ServiceBestEffort, TokenRate: 1000, PeakBandwidth: 2000, MaxSduSize: 9180}
	smaller, larger, rate := offered, offered, offered
	smaller.MaxSduSize, larger.MaxSduSize, rate.TokenRate = 1500, 10000, 500
	for _, tc := range []struct {
		n    ndis.Flowspec
		want bool
	}{{offered, true}, {smaller, true}, {larger, false}, {rate, false}} {
		if got := Narrowing(offered, tc.n); got != tc.want {
			t.Errorf("Narrowing(%+v) = %v, want %v", tc.n, got, tc.want)
		}
	}
}

func TestBuildOffer(t *testing.T) {
	tx := ndis.Flowspec{ServiceType: ndis.ServiceBestEffort, MaxSduSize: 1000}
	rx := ndis.Flowspec{ServiceType: ndis.ServiceBestEffort, MaxSduSize: 2000}
	for _, calling := range []string{"alpha", strings.Repeat("n", 40)} {
		o := BuildOffer(tx, rx, 0x00010020, calling, q2931.MediaReliable)
		cm := o.Params.CallMgrParameters
		if cm != &o.CM || o.Params.MediaParameters != &o.Media {
			t.Fatal("the client's buffer does not point into the offer")
		}
		if cm.Transmit != tx || cm.Receive != rx || o.Tx != tx || o.Rx != rx {
			t.Errorf("offered %+v / %+v, want %+v / %+v", cm.Transmit, cm.Receive, tx, rx)
		}
		if sp := cm.CallMgrSpecific; sp.ParamType != q2931.ParamCallingParty || string(sp.Parameters) != calling {
			t.Errorf("calling party %v %q, want %q", sp.ParamType, sp.Parameters, calling)
		}
		conn, flags, ok := q2931.Media(&o.Params)
		if !ok || conn != 0x00010020 || flags != q2931.MediaReliable {
			t.Errorf("media: conn %#x flags %#x ok %v", conn, flags, ok)
		}
		o.Free()
	}
}
