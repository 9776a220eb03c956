package main

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// slowWriter records each write and holds the first until release is
// closed, as a terminal that cannot keep up does.
type slowWriter struct {
	mu      sync.Mutex
	writes  []string
	release chan struct{}
	first   bool
}

func (w *slowWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	first := !w.first
	w.first = true
	w.mu.Unlock()
	if first {
		<-w.release
	}
	w.mu.Lock()
	w.writes = append(w.writes, string(p))
	w.mu.Unlock()
	return len(p), nil
}

// TestLogWriterBatches: lines logged while the writer is busy go out
// together in one write, all of them, whole and in order, by the time
// Close returns; a line logged after Close is written directly after them.
func TestLogWriterBatches(t *testing.T) {
	w := &slowWriter{release: make(chan struct{})}
	l := newLogWriter(w)
	var want bytes.Buffer
	line := func(i int) {
		s := fmt.Sprintf("msg=line%d\n", i)
		want.WriteString(s)
		if n, err := l.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	line(0) // the writer takes it and blocks on it
	for i := 1; i <= 100; i++ {
		line(i)
	}
	close(w.release)
	l.Close()
	line(101)
	w.mu.Lock()
	defer w.mu.Unlock()
	if got := strings.Join(w.writes, ""); got != want.String() {
		t.Fatalf("written %q, want %q", got, want.String())
	}
	if len(w.writes) > 4 {
		t.Errorf("%d writes for 102 lines, want the lines queued meanwhile in one batch", len(w.writes))
	}
}
