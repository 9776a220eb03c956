package ndis_test

import (
	"testing"

	"github.com/condis-project/condis/internal/ndistest"
	"github.com/condis-project/condis/ndis"
)

func TestSmokeCall(t *testing.T) {
	for _, topo := range ndistest.Topologies {
		for _, mode := range ndistest.Modes {
			t.Run(string(topo)+"/"+mode.String(), func(t *testing.T) {
				n := ndistest.New(t, topo, mode)
				ca, _, _ := n.Ready("echo")
				v, st := n.Caller.CreateVc(ca)
				if st != ndis.StatusSuccess {
					t.Fatal(st)
				}
				n.Caller.MakeCall(v, ndistest.Params("echo"), false)
				n.Run()
				if !v.Make.ExactlyOnce() || v.Make.Status != ndis.StatusSuccess {
					t.Fatalf("make: %v\n%s", v.Make, n.Dump())
				}
				in := n.Callee.LastIncoming()
				if in == nil || in.Connected != 1 {
					t.Fatalf("callee not connected\n%s", n.Dump())
				}
				n.Caller.Send(v, []byte("ping"))
				n.Run()
				if got := in.RxData(); len(got) != 1 || string(got[0]) != "ping" {
					t.Fatalf("rx %q", got)
				}
				n.Caller.CloseCall(v)
				n.Run()
				if !v.Close.ExactlyOnce() || v.Close.Status != ndis.StatusSuccess || in.CloseIndicated != 1 {
					t.Fatalf("close: %v in.closeInd=%d\n%s", v.Close, in.CloseIndicated, n.Dump())
				}
				if st := n.Caller.DeleteVc(v); st != ndis.StatusSuccess {
					t.Fatalf("delete: %v\n%s", st, n.Dump())
				}
				n.Run()
				n.Teardown()
			})
		}
	}
}
