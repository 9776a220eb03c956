package node

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/mcm"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/transport/sim"
	"github.com/condis-project/condis/uni"
)

// TestEchoHoldsDataBeforeConnected: the caller may send as soon as it has
// the CONNECT, but the echo listener may answer only once CallConnected
// (the CONNECT ACKNOWLEDGE) comes. Here the CONNECT ACKNOWLEDGE is held up
// 500 ms, so the caller's first SDU arrives first: the listener keeps it
// and echoes it once the call is up, instead of dropping it.
func TestEchoHoldsDataBeforeConnected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := sim.New(sim.Config{Signal: sim.SignalConfig{Delay: time.Millisecond}})
		ctx := context.Background()
		var stops []func()
		start := func(name string) *Control {
			m := ndis.New(ndis.Options{Name: name, OnViolation: func(v ndis.Violation) { t.Errorf("%s: %v", name, v) }})
			d, err := mcm.New(m, mcm.Config{Name: name})
			if err != nil {
				t.Fatal(err)
			}
			ep, err := net.Endpoint(name, d.Handler())
			if err != nil {
				t.Fatal(err)
			}
			d.Attach(ep)
			ctl, err := NewControl(ctx, Q2931CallManager{CM: d}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			stops = append(stops, func() {
				if err := ctl.Shutdown(ctx); err != nil {
					t.Errorf("%s: Control.Shutdown: %v", name, err)
				}
				if err := d.Shutdown(ctx); err != nil {
					t.Errorf("%s: MCM.Shutdown: %v", name, err)
				}
				ep.Close()
			})
			return ctl
		}
		alpha, beta := start("alpha"), start("beta")
		ln, _, err := pipeTo(t, beta, Request{Op: OpListen, Service: "echo", Echo: true})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				if _, err := ln.Recv(); err != nil {
					return
				}
			}
		}()
		held := net.DelayNth(sim.MsgType(uni.MsgConnectAck), 1, 500*time.Millisecond)
		call, _, err := pipeTo(t, alpha, Request{Op: OpCall, Dest: "beta/echo"})
		if err != nil {
			t.Fatal(err)
		}
		if err := call.Send([]byte("early")); err != nil {
			t.Fatal(err)
		}
		got := make(chan Frame, 1)
		go func() {
			for {
				f, err := call.Recv()
				if err != nil {
					close(got)
					return
				}
				if f.Type == FrameData {
					got <- f
					return
				}
			}
		}()
		select {
		case f, ok := <-got:
			if !ok || string(f.Payload) != "early" {
				t.Fatalf("echo %+v, %v", f, ok)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the SDU sent before the call was connected was never echoed")
		}
		if _, ok := held.Hit(); !ok {
			t.Error("the CONNECT ACKNOWLEDGE was not held up: the test did not test anything")
		}
		call.End()
		call.Close()
		ln.Close()
		for _, stop := range stops {
			stop()
		}
		net.Close()
	})
}
