package spawn

import (
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
)

// TestStopWaitsAndRefuses: Stop returns only once every goroutine Go
// started has ended, and Go refuses afterwards.
func TestStopWaitsAndRefuses(t *testing.T) {
	defer goleak.VerifyNone(t)
	var g Group
	release := make(chan struct{})
	var ended atomic.Int32
	for range 3 {
		if !g.Go(func() { <-release; ended.Add(1) }) {
			t.Fatal("Go refused before Stop")
		}
	}
	stopped := make(chan struct{})
	go func() { g.Stop(); close(stopped) }()
	close(release)
	<-stopped
	if n := ended.Load(); n != 3 {
		t.Fatalf("Stop returned with %d of 3 goroutines ended", n)
	}
	if g.Go(func() { t.Error("ran after Stop") }) {
		t.Error("Go started a goroutine after Stop")
	}
}
