// Package every runs a function at a fixed period on a goroutine of its
// own: the loop of condis node's watchers (internal/procs, internal/heaptrim).
package every

import (
	"context"
	"time"
)

// Run calls f every period on a goroutine of its own until ctx ends or
// stop is called. stop returns once that goroutine has, so f is not
// running then and will not run again.
func Run(ctx context.Context, period time.Duration, f func()) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				f()
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
