package node

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/condis-project/condis/internal/logtext"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/uni"
)

// callLogQueue is how many call events wait for the log at most; beyond
// that they are counted, not logged.
const callLogQueue = 4096

// callLog writes the node's call events (package trace) to its log at
// info, one line each:
//
//	level=INFO msg=call event=offered peer=alpha service=echo vc=vc#12 dir=in
//	level=INFO msg=call event=connected peer=beta service=echo vc=vc#3 dir=out setup=1.2ms
//	level=INFO msg=call event=refused peer=gamma service=echo dir=in cause="call rejected (21)" why="..."
//	level=INFO msg=call event=failed peer=beta service=echo vc=vc#4 dir=out status=NDIS_STATUS_DEST_OUT_OF_ORDER cause="destination out of order (27)"
//	level=INFO msg=call event=released peer=beta service=echo vc=vc#3 dir=out cause="normal call clearing (16)" status=NDIS_STATUS_SUCCESS by=peer
//
// The call manager emits the events with its lock held, so a log that
// blocks (a full pipe) must not hold them up: they wait in a bounded queue
// for a goroutine of the log's own, each line stamped with the time of its
// event. Events that find the queue full are counted, and the count is
// logged (at warn) before the next line.
type callLog struct {
	log *slog.Logger
	// line is log's handler when it is logtext's: lines then go to it
	// without a slog.Record, whose room for five attributes a call line
	// outgrows (an allocation per line).
	line    *logtext.Handler
	attrs   [8]slog.Attr // a line's attributes (write runs on one goroutine)
	cfg     *Config
	queue   chan trace.Call
	dropped atomic.Int64
	stop    chan struct{}
	done    chan struct{}
	closed  sync.Once
}

// newCallLog starts the call log of the node of cfg; nil if log does not
// log at info.
func newCallLog(log *slog.Logger, cfg *Config) *callLog {
	if !log.Enabled(context.Background(), slog.LevelInfo) {
		return nil
	}
	l := &callLog{log: log, cfg: cfg, queue: make(chan trace.Call, callLogQueue),
		stop: make(chan struct{}), done: make(chan struct{})}
	l.line, _ = log.Handler().(*logtext.Handler)
	go l.run()
	return l
}

// tracer is the hook the call manager calls; an empty Tracer for a nil
// callLog.
func (l *callLog) tracer() trace.Tracer {
	if l == nil {
		return trace.Tracer{}
	}
	return trace.Tracer{Call: l.add}
}

// add queues e, or counts it if the queue is full. It never blocks.
func (l *callLog) add(e trace.Call) {
	select {
	case l.queue <- e:
	default:
		l.dropped.Add(1)
	}
}

func (l *callLog) run() {
	defer close(l.done)
	for {
		select {
		case e := <-l.queue:
			l.write(e)
		case <-l.stop:
			for {
				select {
				case e := <-l.queue:
					l.write(e)
				default:
					l.reportDropped()
					return
				}
			}
		}
	}
}

// close logs what is queued and stops the goroutine; events added later
// are not logged.
func (l *callLog) close() {
	if l == nil {
		return
	}
	l.closed.Do(func() { close(l.stop) })
	<-l.done
}

func (l *callLog) reportDropped() {
	if n := l.dropped.Swap(0); n > 0 {
		l.log.Warn("call events not logged: the log did not keep up", "events", n)
	}
}

// write logs one event.
func (l *callLog) write(e trace.Call) {
	l.reportDropped()
	attrs := l.attrs[:0]
	attrs = append(attrs, slog.String("event", e.Event.String()))
	if e.Peer != "" {
		attrs = append(attrs, slog.String("peer", e.Peer))
	}
	if e.Service != "" {
		attrs = append(attrs, slog.String("service", e.Service))
	}
	if e.VC != "" {
		attrs = append(attrs, slog.String("vc", e.VC))
	}
	dir := "out"
	if e.Incoming {
		dir = "in"
	}
	attrs = append(attrs, slog.String("dir", dir))
	switch e.Event {
	case trace.CallConnected:
		if e.Setup > 0 {
			attrs = append(attrs, slog.Duration("setup", e.Setup))
		}
	case trace.CallRefused:
		if e.Cause != 0 {
			attrs = append(attrs, slog.String("cause", e.Cause.String()))
		}
		if e.Status != 0 { // the client refused it
			attrs = append(attrs, slog.String("status", e.Status.String()))
		} else if why := l.why(e); why != "" {
			attrs = append(attrs, slog.String("why", why))
		}
	case trace.CallFailed, trace.CallReleased:
		if e.Cause != 0 {
			attrs = append(attrs, slog.String("cause", e.Cause.String()))
		}
		attrs = append(attrs, slog.String("status", e.Status.String()))
		if e.Event == trace.CallReleased {
			by := "this node"
			if e.ByPeer {
				by = "peer"
			}
			attrs = append(attrs, slog.String("by", by))
		}
	}
	if l.line != nil {
		l.line.Line(context.Background(), e.Time, slog.LevelInfo, "call", attrs...)
		return
	}
	r := slog.NewRecord(e.Time, slog.LevelInfo, "call", 0)
	r.AddAttrs(attrs...)
	l.log.Handler().Handle(context.Background(), r)
}

// why explains an incoming call the node's access control refused (cause
// 21), as the configuration has it.
func (l *callLog) why(e trace.Call) string {
	if !e.Incoming || e.Cause != uni.CauseCallRejected || l.cfg == nil {
		return ""
	}
	if !l.cfg.Trusts(e.Peer) {
		return fmt.Sprintf(`%s is not a [[peer]] of this node (trust = "peers")`, e.Peer)
	}
	if s, ok := l.cfg.SAP(e.Service); ok && !s.Allows(e.Peer) {
		return fmt.Sprintf("%s is not on the allow list of [[sap]] %s", e.Peer, e.Service)
	}
	return ""
}
