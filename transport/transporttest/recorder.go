// Package transporttest holds test helpers shared by the transport
// implementations: a Recorder that logs every event and checks the
// concurrency contract of package transport as it goes.
package transporttest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/condis-project/condis/transport"
)

// Kind is the kind of an Event. The zero value is not a kind.
type Kind uint8

// Kinds.
const (
	Up Kind = iota + 1
	Down
	Message
	Datagram
	StreamData
)

func (k Kind) String() string {
	switch k {
	case Up:
		return "LinkUp"
	case Down:
		return "LinkDown"
	case Message:
		return "Message"
	case Datagram:
		return "Datagram"
	case StreamData:
		return "StreamData"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Event is one callback the Recorder received.
type Event struct {
	Kind   Kind
	Peer   string
	Link   transport.Link
	ConnID uint32 // Datagram, StreamData
	Data   []byte // Message, Datagram, StreamData
	Err    error  // Down
	At     time.Time
}

func (e Event) String() string {
	return fmt.Sprintf("%v peer=%s conn=%#x len=%d err=%v", e.Kind, e.Peer, e.ConnID, len(e.Data), e.Err)
}

// Recorder is a transport.Handler that queues every event on Events and
// reports any breach of the transport contract with t.Errorf:
// callbacks of a link before its LinkUp or after its LinkDown, a LinkDown
// while another callback of the link runs, two LinkDowns, overlapping calls
// of one serial kind, a LinkUp while the previous link to the same peer is
// still up.
//
// If Discard is set before the first event, Message, Datagram and StreamData
// events are counted but not queued (for benchmarks and floods).
type Recorder struct {
	t       testing.TB
	Name    string
	Events  chan Event
	Discard bool

	Messages, Datagrams, StreamSDUs atomic.Int64 // counts, queued or not

	mu     sync.Mutex
	active map[string]*linkRec // peer -> link between LinkUp and LinkDown
	ups    map[string]int
}

type linkRec struct {
	r    *Recorder
	l    transport.Link
	peer string

	down     atomic.Bool
	inMsg    atomic.Int32
	inDg     atomic.Int32
	inStream sync.Map // connID -> *atomic.Int32
	running  atomic.Int32
}

// NewRecorder returns a Recorder for the node called name whose event queue
// holds up to 1<<16 events.
func NewRecorder(t testing.TB, name string) *Recorder {
	return &Recorder{
		t:      t,
		Name:   name,
		Events: make(chan Event, 1<<16),
		active: make(map[string]*linkRec),
		ups:    make(map[string]int),
	}
}

// LinkUp implements transport.Handler.
func (r *Recorder) LinkUp(l transport.Link) transport.LinkHandler {
	lr := &linkRec{r: r, l: l, peer: l.Peer()}
	r.mu.Lock()
	if old := r.active[lr.peer]; old != nil {
		r.t.Errorf("%s: LinkUp for %s while the previous link to it is up", r.Name, lr.peer)
	}
	r.active[lr.peer] = lr
	r.ups[lr.peer]++
	r.mu.Unlock()
	r.push(Event{Kind: Up, Peer: lr.peer, Link: l})
	return lr
}

// Ups returns how many LinkUps the Recorder has seen for peer.
func (r *Recorder) Ups(peer string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ups[peer]
}

// Active returns the link to peer that is up, or nil.
func (r *Recorder) Active(peer string) transport.Link {
	r.mu.Lock()
	defer r.mu.Unlock()
	if lr := r.active[peer]; lr != nil {
		return lr.l
	}
	return nil
}

func (r *Recorder) push(e Event) {
	e.At = time.Now()
	select {
	case r.Events <- e:
	default:
		r.t.Errorf("%s: event queue full; dropped %v", r.Name, e)
	}
}

// Next returns the next event, or fails the test after timeout (virtual
// time under synctest).
func (r *Recorder) Next(timeout time.Duration) Event {
	r.t.Helper()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case e := <-r.Events:
		return e
	case <-t.C:
		r.t.Fatalf("%s: no event within %v", r.Name, timeout)
		return Event{}
	}
}

// NextKind returns the next event, failing the test if it is not of kind k.
func (r *Recorder) NextKind(k Kind, timeout time.Duration) Event {
	r.t.Helper()
	e := r.Next(timeout)
	if e.Kind != k {
		r.t.Fatalf("%s: got %v, want %v", r.Name, e, k)
	}
	return e
}

// Drain returns the events queued now, without waiting.
func (r *Recorder) Drain() []Event {
	var out []Event
	for {
		select {
		case e := <-r.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func (lr *linkRec) enter(kind Kind, serial *atomic.Int32) {
	if lr.down.Load() {
		lr.r.t.Errorf("%s: %v from %s after its LinkDown", lr.r.Name, kind, lr.peer)
	}
	lr.running.Add(1)
	if serial != nil && serial.Add(1) != 1 {
		lr.r.t.Errorf("%s: overlapping %v calls for the link to %s", lr.r.Name, kind, lr.peer)
	}
}

func (lr *linkRec) leave(serial *atomic.Int32) {
	if serial != nil {
		serial.Add(-1)
	}
	lr.running.Add(-1)
}

func (lr *linkRec) Message(msg []byte) {
	lr.enter(Message, &lr.inMsg)
	defer lr.leave(&lr.inMsg)
	lr.r.Messages.Add(1)
	if !lr.r.Discard {
		lr.r.push(Event{Kind: Message, Peer: lr.peer, Link: lr.l, Data: msg})
	}
}

func (lr *linkRec) Datagram(connID uint32, payload []byte) {
	lr.enter(Datagram, &lr.inDg)
	defer lr.leave(&lr.inDg)
	lr.r.Datagrams.Add(1)
	if !lr.r.Discard {
		lr.r.push(Event{Kind: Datagram, Peer: lr.peer, Link: lr.l, ConnID: connID, Data: payload})
	}
}

func (lr *linkRec) StreamData(connID uint32, sdu []byte) {
	v, _ := lr.inStream.LoadOrStore(connID, new(atomic.Int32))
	serial := v.(*atomic.Int32)
	lr.enter(StreamData, serial)
	defer lr.leave(serial)
	lr.r.StreamSDUs.Add(1)
	if !lr.r.Discard {
		lr.r.push(Event{Kind: StreamData, Peer: lr.peer, Link: lr.l, ConnID: connID, Data: sdu})
	}
}

func (lr *linkRec) LinkDown(err error) {
	if lr.down.Swap(true) {
		lr.r.t.Errorf("%s: second LinkDown for the link to %s", lr.r.Name, lr.peer)
	}
	if n := lr.running.Load(); n != 0 {
		lr.r.t.Errorf("%s: LinkDown for %s while %d other callbacks of the link run", lr.r.Name, lr.peer, n)
	}
	lr.r.mu.Lock()
	if lr.r.active[lr.peer] == lr {
		delete(lr.r.active, lr.peer)
	}
	lr.r.mu.Unlock()
	lr.r.push(Event{Kind: Down, Peer: lr.peer, Link: lr.l, Err: err})
}
