package ladder

import (
	"context"
	"io"
	"time"
)

// DefaultLinger is how long a Writer waits after a call is over before it
// draws it, for the events that trail its end (the last RELEASE COMPLETE
// on the far node, the call manager's word on a refusal).
const DefaultLinger = 500 * time.Millisecond

// Writer draws the calls of a live stream of events, each once it has been
// over (every VC deleted; for a call with no VC on the traced nodes, the
// RELEASE COMPLETE seen) for Linger. Calls are numbered in the order they
// are drawn. Events that come after their call was drawn make a call of
// their own. A Writer is not safe for concurrent use.
type Writer struct {
	w      io.Writer
	f      Format
	linger time.Duration
	c      *Collector
	n      int
}

// NewWriter returns a Writer drawing in format f on w; linger 0 means
// DefaultLinger.
func NewWriter(w io.Writer, f Format, linger time.Duration) *Writer {
	if linger <= 0 {
		linger = DefaultLinger
	}
	return &Writer{w: w, f: f, linger: linger, c: NewCollector()}
}

// Add takes an event and draws the calls that have been over for the
// linger time at the event's time.
func (w *Writer) Add(e Event) error {
	w.c.Add(e)
	return w.Due(e.Time)
}

// Due draws the calls that have been over for the linger time at now.
func (w *Writer) Due(now time.Time) error {
	return w.write(w.c.take(now, now.Add(-w.linger), false))
}

// Flush draws every call not drawn yet, over or not.
func (w *Writer) Flush() error { return w.write(w.c.take(time.Time{}, time.Time{}, true)) }

func (w *Writer) write(ls []*Ladder) error {
	if len(ls) == 0 {
		return nil
	}
	err := Write(w.w, w.f, w.n+1, ls)
	w.n += len(ls)
	return err
}

// Stream draws the calls of the events read from events, in format f on w,
// each once it has been over for DefaultLinger, until events is closed or
// ctx is done; then it draws the calls not drawn yet and returns the first
// error writing, or ctx's. Time passing with no event counts too: on the
// events' clock, the last event's time plus the time since it came.
func Stream(ctx context.Context, w io.Writer, f Format, events <-chan Event) error {
	lw := NewWriter(w, f, DefaultLinger)
	tick := time.NewTicker(DefaultLinger / 2)
	defer tick.Stop()
	var last time.Time // the last event's time
	var came time.Time // when it came
	for {
		select {
		case e, ok := <-events:
			if !ok {
				return lw.Flush()
			}
			last, came = e.Time, time.Now()
			if err := lw.Add(e); err != nil {
				return err
			}
		case <-tick.C:
			if came.IsZero() {
				continue
			}
			if err := lw.Due(last.Add(time.Since(came))); err != nil {
				return err
			}
		case <-ctx.Done():
			if err := lw.Flush(); err != nil {
				return err
			}
			return ctx.Err()
		}
	}
}
