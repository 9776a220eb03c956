package main

import (
	"io"
	"sync"
)

// logBatchMax bounds what a logWriter holds: past it, a Write waits for the
// writer (as a plain write to a slow terminal would).
const logBatchMax = 1 << 20

// logWriter hands a node's log lines to w from a goroutine of its own, in
// batches: a node logging a few lines per call, thousands of calls a
// second, makes one write(2) per batch rather than one per line (a fifth
// of a busy node's CPU went to them), and a logging goroutine does not
// wait for the terminal or the file. Lines keep their order and are
// written whole. Close writes what is left; later Writes go to w
// directly.
type logWriter struct {
	w    io.Writer
	mu   sync.Mutex
	room *sync.Cond // on mu: buf was taken
	buf  []byte     // lines not written yet
	shut bool       // Close was called
	kick chan struct{}
	done chan struct{}
}

func newLogWriter(w io.Writer) *logWriter {
	l := &logWriter{w: w, kick: make(chan struct{}, 1), done: make(chan struct{})}
	l.room = sync.NewCond(&l.mu)
	go l.run()
	return l
}

// Write queues p (a copy of it) for the writer goroutine.
func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	for len(l.buf) >= logBatchMax && !l.shut {
		l.room.Wait()
	}
	if l.shut {
		l.mu.Unlock()
		<-l.done // after the lines queued before Close
		return l.w.Write(p)
	}
	l.buf = append(l.buf, p...)
	select { // under mu: Close closes kick under it too
	case l.kick <- struct{}{}:
	default: // the writer is already due to run
	}
	l.mu.Unlock()
	return len(p), nil
}

// run writes what has been queued each time it is kicked, until Close.
func (l *logWriter) run() {
	defer close(l.done)
	var spare []byte
	for {
		_, open := <-l.kick
		l.mu.Lock()
		b := l.buf
		l.buf = spare[:0]
		l.room.Broadcast()
		l.mu.Unlock()
		if len(b) > 0 {
			l.w.Write(b) // a log that cannot be written has nowhere to say so
		}
		spare = b
		if !open {
			return
		}
	}
}

// Close writes every line queued and stops the goroutine.
func (l *logWriter) Close() {
	l.mu.Lock()
	if l.shut {
		l.mu.Unlock()
		return
	}
	l.shut = true
	close(l.kick)
	l.room.Broadcast()
	l.mu.Unlock()
	<-l.done
}
