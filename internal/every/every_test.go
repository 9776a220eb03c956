package every

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestRun: f runs once a period, never before the first period is over,
// and not after stop has returned or ctx has ended (the goroutine is gone:
// synctest would report it otherwise).
func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n, m atomic.Int32
		stop := Run(context.Background(), time.Second, func() { n.Add(1) })
		time.Sleep(999 * time.Millisecond)
		synctest.Wait()
		if n.Load() != 0 {
			t.Fatalf("%d calls before the first period ended", n.Load())
		}
		time.Sleep(3*time.Second + time.Millisecond)
		synctest.Wait()
		if n.Load() != 4 {
			t.Fatalf("%d calls after 4 s, want 4", n.Load())
		}
		stop()
		time.Sleep(5 * time.Second)
		if n.Load() != 4 {
			t.Fatalf("%d calls after stop, want 4", n.Load())
		}

		ctx, cancel := context.WithCancel(context.Background())
		stop = Run(ctx, time.Second, func() { m.Add(1) })
		time.Sleep(1500 * time.Millisecond)
		cancel()
		synctest.Wait()
		time.Sleep(5 * time.Second)
		if m.Load() != 1 {
			t.Fatalf("%d calls, want 1 before ctx ended", m.Load())
		}
		stop() // returns at once: the goroutine is gone
	})
}
