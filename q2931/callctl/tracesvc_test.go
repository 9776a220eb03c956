package callctl

import (
	"strconv"
	"sync"
	"testing"

	"github.com/condis-project/condis/trace"
)

// TestTracedServiceNames: a traced call event names the VC's service;
// the string is made once per service (a node's few services), not for
// every event, and names past the first maxServiceStrings are right too.
func TestTracedServiceNames(t *testing.T) {
	var mu sync.Mutex
	d := NewCore(&sendOwner{}, &mu, Config{Name: "alpha"})
	mu.Lock()
	defer mu.Unlock()
	v := &Vc{Service: MakeServiceName("echo")}
	if e := d.callEventLocked(v, trace.CallConnected, 0, 0, false); e.Service != "echo" {
		t.Fatalf("event names service %q, want echo", e.Service)
	}
	if n := testing.AllocsPerRun(100, func() { _ = d.callEventLocked(v, trace.CallConnected, 0, 0, false) }); n != 0 {
		t.Errorf("a traced event of a known service allocates %.0f times, want none", n)
	}
	for i := range 2 * maxServiceStrings {
		name := "s" + strconv.Itoa(i)
		for range 2 {
			if e := d.callEventLocked(&Vc{Service: MakeServiceName(name)}, trace.CallOffered, 0, 0, false); e.Service != name {
				t.Fatalf("event names service %q, want %q", e.Service, name)
			}
		}
	}
	if len(d.svcStrings) > maxServiceStrings {
		t.Errorf("%d service names kept, want at most %d", len(d.svcStrings), maxServiceStrings)
	}
}

// TestIgnoredCallEventsNotBuilt: while the Call hook would ignore an event
// (CallIgnored: a trace feed with no subscriber, and no call log), the
// call control does not build one: no hook call, no allocation, no
// lock; once it would not, the event reaches the hook.
func TestIgnoredCallEventsNotBuilt(t *testing.T) {
	var mu sync.Mutex
	ignored, got := true, 0
	d := NewCore(&sendOwner{}, &mu, Config{Name: "alpha", Tracer: trace.Tracer{
		Call:        func(trace.Call) { got++ },
		CallIgnored: func() bool { return ignored },
	}})
	v := &Vc{Service: MakeServiceName("echo")}
	d.traceCall(v, trace.CallConnected, 0, 0, false)
	if got != 0 {
		t.Fatalf("an ignored event reached the hook %d times", got)
	}
	if n := testing.AllocsPerRun(100, func() { d.traceCall(v, trace.CallReleased, 0, 0, false) }); n != 0 {
		t.Errorf("an ignored event costs %.0f allocations, want none", n)
	}
	ignored = false
	d.traceCall(v, trace.CallConnected, 0, 0, false)
	mu.Lock()
	d.traceCallLocked(v, trace.CallReleased, 0, 0, false)
	mu.Unlock()
	if got != 2 {
		t.Errorf("%d events reached the hook, want 2", got)
	}
}
