package callctl

import (
	"testing"

	"github.com/condis-project/condis/ndis"
)

// TestFlowsShared: VCs given the same flowspecs one after the other share
// one Flows; giving one VC others leaves the VCs that shared its old ones
// as they were (Flows is never changed in place); a VC with none reads
// zero flowspecs.
func TestFlowsShared(t *testing.T) {
	d := &Core{}
	a, b, none := &Vc{}, &Vc{}, &Vc{}
	f1, f2 := ndis.Flowspec{TokenRate: 1, MaxSduSize: 100}, ndis.Flowspec{TokenRate: 2, MaxSduSize: 200}
	d.setFlowsLocked(a, f1, f2)
	d.setFlowsLocked(b, f1, f2)
	if a.flows != b.flows {
		t.Error("two VCs with the same flowspecs have a copy each")
	}
	d.setFlowsLocked(b, f2, f1)
	if a.Tx() != f1 || a.Rx() != f2 || b.Tx() != f2 || b.Rx() != f1 {
		t.Errorf("after b changed: a %+v/%+v, b %+v/%+v", a.Tx(), a.Rx(), b.Tx(), b.Rx())
	}
	d.setFlowsLocked(a, f1, f1)
	if b.Tx() != f2 || b.Rx() != f1 {
		t.Errorf("a's change reached b: %+v/%+v", b.Tx(), b.Rx())
	}
	if none.Tx() != (ndis.Flowspec{}) || none.Rx() != (ndis.Flowspec{}) {
		t.Error("a VC without flowspecs reads some")
	}
}
