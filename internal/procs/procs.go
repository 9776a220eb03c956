// Package procs chooses, while a node runs, how many CPUs its Go scheduler
// uses (GOMAXPROCS): one while one is enough, more while the node uses all
// it has and the host has a CPU to spare, and fewer again when the work
// falls off.
//
// Why not all of them from the start, as Go does: with more than one P,
// a goroutine that makes another runnable also wakes an idle OS thread on
// another CPU to look for it (the runtime's wakep), and a message crossing
// between two nodes makes about five such hand-offs in quic-go on each
// side. On a small virtual machine every such wake-up is an
// inter-processor interrupt that costs tens of microseconds, and the woken
// thread then competes for a CPU with the other node. Two `condis node`
// processes on one 2-vCPU host set a call up in 77 µs (p50) with one P
// each, against 163 µs with two, and carry 43,000 calls/s at 64 in flight
// against 31,000 (docs/performance.md). A node that is busy on a bigger
// host still gets every CPU the runtime would have given it (Max): the
// controller adds Ps while the node keeps all its Ps busy and the host has
// idle CPUs, so the mediator's per-object locking (issue 12) still scales.
package procs

import (
	"context"
	"math"
	"time"

	"github.com/condis-project/condis/internal/every"
)

// Sample is what one window showed: the CPUs' worth of time the process
// used (user and system) and the CPUs' worth the host left idle, both as
// time used over the window's length. HostIdle is negative when the host's
// idle time is unknown (no /proc/stat).
type Sample struct {
	Busy     float64
	HostIdle float64
}

// The controller's thresholds.
//
// A node raises its Ps when it kept at least raiseBusy of them busy over a
// window and the host had at least spareIdle CPUs idle: a whole CPU, since
// a P that has to share a CPU with another busy process only adds
// wake-ups (two nodes on a 2-vCPU host leave about half a CPU idle between
// them while both are busy, and a second P each made them slower).
//
// It lowers them after dropAfter windows in a row that were light (at
// most dropBusy of its Ps busy: it halves them) or contended (the host
// had less than busyHost CPUs idle and the node got less than its Ps'
// worth, by more than half a CPU: it keeps the CPUs it did get). The
// contended rule matters because more Ps than a node gets make it spend
// CPU on threads that wake and find nothing to do, which reads as busy:
// with two Ps on the 2-vCPU host, a node used more CPU for fewer calls
// than with one and never looked light.
//
// Between raising and lowering (with two Ps on an idle host, 0.6 to 1.6
// CPUs used) it stays where it is, so a steady load does not make it swing.
const (
	raiseBusy = 0.8
	spareIdle = 1.0
	dropBusy  = 0.3
	busyHost  = 0.25
	dropAfter = 3
)

// State is the controller's state: the Ps in force, and how many windows
// in a row have been light or contended.
type State struct {
	Procs int
	low   int
}

// Next is the controller's one transition: the state after a window that
// showed s, with at most most Ps. A raise adds as many Ps as the host had
// idle CPUs (at least one, at most doubling; doubling when the host's idle
// time is unknown).
func Next(st State, most int, s Sample) State {
	p := st.Procs
	light := p > 1 && s.Busy <= dropBusy*float64(p)
	contended := p > 1 && s.HostIdle >= 0 && s.HostIdle < busyHost && s.Busy < float64(p)-0.5
	switch {
	case p < most && s.Busy >= raiseBusy*float64(p) && (s.HostIdle < 0 || s.HostIdle >= spareIdle):
		add := p
		if s.HostIdle >= 0 {
			add = min(p, max(1, int(math.Floor(s.HostIdle))))
		}
		return State{Procs: min(most, p+add)}
	case !light && !contended:
		return State{Procs: p}
	case st.low+1 < dropAfter:
		return State{Procs: p, low: st.low + 1}
	case light:
		return State{Procs: max(1, p/2)}
	}
	return State{Procs: max(1, min(p-1, int(math.Ceil(s.Busy))))} // contended
}

// Counters reads the two cumulative times Samples are made of: the CPU
// time the process has used, and the host's idle CPU time (ok false when
// it cannot be read).
type Counters func() (used, idle time.Duration, ok bool)

// Controller runs Next every Window on what Read gives, calling Set with
// every new number of Ps.
type Controller struct {
	Window time.Duration
	Max    int      // the most Ps (what the runtime would give the process)
	Read   Counters // the process's and the host's CPU time
	Set    func(procs int)
	// Changed, if set, is told of every change after the first, and of
	// the window that caused it.
	Changed func(from, to int, s Sample)
}

// Start sets one P (or Max, if smaller) and then adjusts the Ps every
// Window, on a goroutine of its own, until ctx ends or stop is called.
// stop returns once that goroutine has; it leaves the Ps as they are.
func (c *Controller) Start(ctx context.Context) (stop func()) {
	st := State{Procs: min(1, c.Max)}
	if st.Procs < 1 {
		return func() {}
	}
	c.Set(st.Procs)
	used, idle, idleOK := c.Read()
	return every.Run(ctx, c.Window, func() {
		u, i, ok := c.Read()
		w := c.Window.Seconds()
		s := Sample{Busy: (u - used).Seconds() / w, HostIdle: -1}
		if ok && idleOK {
			s.HostIdle = (i - idle).Seconds() / w
		}
		used, idle, idleOK = u, i, ok
		next := Next(st, c.Max, s)
		if next.Procs != st.Procs {
			c.Set(next.Procs)
			if c.Changed != nil {
				c.Changed(st.Procs, next.Procs, s)
			}
		}
		st = next
	})
}
