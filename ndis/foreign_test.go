package ndis_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/condis-project/condis/internal/ndistest"
	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
)

// handles of one node, to be passed to another.
type nodeHandles struct {
	af    *ndis.Af
	sap   *ndis.Sap
	vc    *ndis.Vc
	party *ndis.Party
	ad    *ndis.Adapter
}

func liveHandles(t *testing.T, n *ndistest.Net) nodeHandles {
	ca, _, s := n.Ready("svc")
	v, st := n.Caller.CreateVc(ca)
	if st != ndis.StatusSuccess {
		t.Fatal(st)
	}
	p, _ := n.Caller.MakeCall(v, ndistest.Params("svc"), true)
	n.Run()
	if v.Make.Status != ndis.StatusSuccess || p.H == nil {
		t.Fatalf("multipoint call: %v", v.Make)
	}
	return nodeHandles{af: ca.H, sap: s.H, vc: v.H, party: p.H, ad: n.Adapter}
}

// argsFor builds arguments for method m: handle parameters from h (nil
// pointers are left as zero values), other pointers non-nil and empty.
func argsFor(m reflect.Method, h nodeHandles) []reflect.Value {
	var args []reflect.Value
	for i := 1; i < m.Type.NumIn(); i++ { // 0 is the receiver
		pt := m.Type.In(i)
		var v reflect.Value
		switch pt {
		case reflect.TypeOf(h.af):
			v = reflect.ValueOf(h.af)
		case reflect.TypeOf(h.sap):
			v = reflect.ValueOf(h.sap)
		case reflect.TypeOf(h.vc):
			v = reflect.ValueOf(h.vc)
		case reflect.TypeOf(h.party):
			v = reflect.ValueOf(h.party)
		case reflect.TypeOf(h.ad):
			v = reflect.ValueOf(h.ad)
		case reflect.TypeOf(&ndis.NetBufferList{}):
			v = reflect.ValueOf(&ndis.NetBufferList{Data: []byte("x")})
		case reflect.TypeOf(&ndis.CallParameters{}):
			v = reflect.ValueOf(&ndis.CallParameters{CallMgrParameters: &ndis.CallManagerParameters{}})
		default:
			if pt.Kind() == reflect.Pointer {
				v = reflect.New(pt.Elem())
			} else {
				v = reflect.Zero(pt)
			}
		}
		args = append(args, v)
	}
	return args
}

// TestRule_R_GEN_8_ForgedAndForeignHandles: handles are opaque and belong to
// the mediator that issued them (R-GEN-8). Every method of *ndis.Binding and
// *ndis.Adapter, given zero-value handles a driver made itself or live
// handles of another mediator (another node in the same process), refuses
// with a failure status and does not panic; the node's own objects are
// untouched and it keeps working.
func TestRule_R_GEN_8_ForgedAndForeignHandles(t *testing.T) {
	for _, topo := range ndistest.Topologies {
		t.Run(string(topo), func(t *testing.T) {
			a := ndistest.New(t, topo, memdrv.Immediate)
			b := ndistest.New(t, topo, memdrv.Immediate)
			liveHandles(t, a)
			foreign := liveHandles(t, b)
			forged := nodeHandles{af: &ndis.Af{}, sap: &ndis.Sap{}, vc: &ndis.Vc{}, party: &ndis.Party{}, ad: &ndis.Adapter{}}
			before := a.M.Snapshot().String()
			a.Tolerate(true) // every call below must be refused; checked one by one
			receivers := []any{a.Caller.Binding(), a.Adapter}
			if a.CM != nil {
				receivers = append(receivers, a.CM.Binding())
			}
			for _, set := range []struct {
				name string
				h    nodeHandles
			}{{"forged", forged}, {"foreign", foreign}} {
				for _, r := range receivers {
					rv := reflect.ValueOf(r)
					for i := 0; i < rv.NumMethod(); i++ {
						m := rv.Type().Method(i)
						if !takesHandle(m) {
							continue
						}
						name := fmt.Sprintf("%s/%T.%s", set.name, r, m.Name)
						a.Mark()
						seen := len(a.Seen())
						out, panicked := callRecover(rv.Method(i), argsFor(m, set.h))
						if panicked != nil {
							t.Fatalf("%s panicked: %v", name, panicked)
						}
						for _, o := range out {
							if st, ok := o.Interface().(ndis.Status); ok && (st == ndis.StatusSuccess || st == ndis.StatusPending) {
								t.Errorf("%s returned %v for a handle this node never issued", name, st)
							}
						}
						if len(a.Seen()) == seen {
							t.Errorf("%s was not reported as a violation", name)
						}
						for _, up := range a.Upcalls() {
							if up != "caller.ProtocolCoSendNetBufferListsComplete" && up != "cm.ProtocolCoSendNetBufferListsComplete" {
								t.Errorf("%s reached a driver: %s", name, up)
							}
						}
					}
				}
			}
			if after := a.M.Snapshot().String(); after != before {
				t.Errorf("foreign handles changed the node:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			a.Tolerate(false)
			if len(a.Seen()) == 0 {
				t.Fatal("no violations were reported")
			}
			for _, v := range a.Seen() {
				if v.Status == ndis.StatusSuccess && v.Rule != "R-DATA-3" {
					t.Errorf("violation without a refusal status: %v", v)
				}
			}
		})
	}
}

func takesHandle(m reflect.Method) bool {
	for i := 1; i < m.Type.NumIn(); i++ {
		switch m.Type.In(i) {
		case reflect.TypeOf(&ndis.Af{}), reflect.TypeOf(&ndis.Sap{}), reflect.TypeOf(&ndis.Vc{}),
			reflect.TypeOf(&ndis.Party{}), reflect.TypeOf(&ndis.Adapter{}):
			return true
		}
	}
	return false
}

func callRecover(fn reflect.Value, args []reflect.Value) (out []reflect.Value, panicked any) {
	defer func() { panicked = recover() }()
	return fn.Call(args), nil
}

// TestRule_R_GEN_8_ForgedReceivers: a *Binding or *Adapter the mediator did
// not hand out (nil, or a zero value the caller built) has no mediator
// behind it; every method returns a failure status at once instead of
// panicking.
func TestRule_R_GEN_8_ForgedReceivers(t *testing.T) {
	var nilB *ndis.Binding
	var nilA *ndis.Adapter
	h := nodeHandles{af: &ndis.Af{}, sap: &ndis.Sap{}, vc: &ndis.Vc{}, party: &ndis.Party{}, ad: &ndis.Adapter{}}
	for _, r := range []any{&ndis.Binding{}, &ndis.Adapter{}, nilB, nilA} {
		rv := reflect.ValueOf(r)
		for i := 0; i < rv.NumMethod(); i++ {
			m := rv.Type().Method(i)
			name := fmt.Sprintf("%T.%s", r, m.Name)
			out, panicked := callRecover(rv.Method(i), argsFor(m, h))
			if panicked != nil {
				t.Errorf("%s panicked: %v", name, panicked)
				continue
			}
			if len(out) > 0 && out[len(out)-1].Type() == reflect.TypeOf(ndis.StatusSuccess) {
				if st := out[len(out)-1].Interface().(ndis.Status); st != ndis.StatusFailure {
					t.Errorf("%s returned %v, want NDIS_STATUS_FAILURE", name, st)
				}
			}
		}
	}
}
