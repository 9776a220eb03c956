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
