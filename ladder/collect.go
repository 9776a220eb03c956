package ladder

import (
	"cmp"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/uni"
)

// Collector sorts events into calls. Feed it with Add in the order the
// events happened (events of several nodes may be interleaved); Ladders
// returns the calls so far. It is not safe for concurrent use: a node's
// hooks run on many goroutines, so guard it with a mutex.
type Collector struct {
	seq    uint64
	groups map[string]*group // by key: the VCs and wire calls of each call
	all    []*group          // every group made, in order of creation

	vcGen   map[string]int                   // node|vc#N → generation (bumped by a second NdisClMakeCall on the VC)
	parties map[string]string                // node|party#N → the key of its VC
	creates map[string]record                // node|driver|function → an NdisCoCreateVc/NdisMCmCreateVc awaiting its VC
	adds    map[string][]string              // node → VC keys of NdisClAddParty requests whose party is not known yet
	legs    map[string][]string              // node → VC keys of MakeCall/AddParty requests that may still send a SETUP
	wireGen map[string]int                   // allocator|other|ref → generation (bumped by a SETUP after the call ended)
	cms     map[string]map[string]driverKind // node → drivers seen acting as its call manager or miniport
	ndis    map[string]bool                  // nodes whose mediator trace is in the stream
}

// record is an event and its place in the order of arrival.
type record struct {
	Event
	seq uint64
}

// group is a call being assembled: a union-find node whose root holds the
// events and keys of every group merged into it.
type group struct {
	parent  *group
	events  []record
	vcs     map[string]bool            // VC keys → deleted (or superseded by a new call on the VC)
	wires   map[string]map[string]bool // wire keys → nodes that saw its RELEASE COMPLETE
	written bool                       // a Writer has drawn it
	overAt  time.Time                  // when a Writer first saw it over
}

func (g *group) root() *group {
	for g.parent != nil {
		if g.parent.parent != nil {
			g.parent = g.parent.parent
		}
		g = g.parent
	}
	return g
}

// over reports whether the call is over: every VC deleted (on a node whose
// mediator trace is not in the stream: its call failed, was refused or
// released), or, for a call with no VC on the traced nodes, a RELEASE
// COMPLETE seen on every wire call.
func (g *group) over() bool {
	if len(g.vcs) > 0 {
		for _, done := range g.vcs {
			if !done {
				return false
			}
		}
		return true
	}
	if len(g.wires) == 0 {
		return false
	}
	for _, rc := range g.wires {
		if len(rc) == 0 {
			return false
		}
	}
	return true
}

// carriesCall reports whether g is a call: one of its events is a Q.2931
// message, a call manager's word on a call or link, or a CoNDIS call or
// party function. A VC that never carried a call — a stand-alone call
// manager's signalling VC, whose events are activations and sends — is
// not drawn.
func (g *group) carriesCall() bool {
	for _, r := range g.events {
		if r.NDIS == nil || strings.Contains(r.NDIS.Func, "Call") || strings.Contains(r.NDIS.Func, "Party") {
			return true
		}
	}
	return false
}

// NewCollector returns an empty Collector.
func NewCollector() *Collector {
	return &Collector{groups: map[string]*group{}, vcGen: map[string]int{}, parties: map[string]string{},
		creates: map[string]record{}, adds: map[string][]string{}, legs: map[string][]string{},
		wireGen: map[string]int{}, cms: map[string]map[string]driverKind{}, ndis: map[string]bool{}}
}

// Add files one event under its call. Events that belong to no call are
// dropped.
func (c *Collector) Add(e Event) {
	c.seq++
	r := record{Event: e, seq: c.seq}
	switch {
	case e.NDIS != nil:
		c.addNDIS(r)
	case e.Signal != nil:
		c.addSignal(r)
	case e.Call != nil:
		c.addCall(r)
	case e.Link != nil:
		c.addLink(r)
	}
}

// group returns the root group of key, making one if there is none.
func (c *Collector) group(key string) *group {
	if g := c.groups[key]; g != nil {
		return g.root()
	}
	g := &group{vcs: map[string]bool{}, wires: map[string]map[string]bool{}}
	switch {
	case strings.HasPrefix(key, "vc|"):
		g.vcs[key] = false
	case strings.HasPrefix(key, "cr|"):
		g.wires[key] = map[string]bool{}
	}
	c.groups[key] = g
	c.all = append(c.all, g)
	return g
}

// union merges the calls of keys a and b and returns the root.
func (c *Collector) union(a, b string) *group {
	ga, gb := c.group(a), c.group(b)
	if ga == gb {
		return ga
	}
	if len(ga.events) < len(gb.events) {
		ga, gb = gb, ga
	}
	gb.parent = ga
	ga.events = append(ga.events, gb.events...)
	gb.events = nil
	for k, v := range gb.vcs {
		ga.vcs[k] = v
	}
	for k, v := range gb.wires {
		ga.wires[k] = v
	}
	ga.written = ga.written || gb.written
	return ga
}

func (c *Collector) file(key string, r record) *group {
	g := c.group(key)
	g.events = append(g.events, r)
	return g
}

// ---- the mediator's events ----

func (c *Collector) vcKey(node, obj string) string {
	return "vc|" + node + "|" + obj + "|" + strconv.Itoa(c.vcGen[node+"|"+obj])
}

func (c *Collector) addNDIS(r record) {
	e, node := r.NDIS, r.Node
	c.ndis[node] = true
	if k := driverKindOf(e); k != 0 {
		if c.cms[node] == nil {
			c.cms[node] = map[string]driverKind{}
		}
		c.cms[node][e.Driver] |= k
	}
	var key string
	switch {
	case strings.HasPrefix(e.Object, "vc#"):
		if e.Kind == ndis.EventRequest && e.Func == "NdisClMakeCall" {
			c.newCallOnVc(node, e.Object)
		}
		key = c.vcKey(node, e.Object)
	case strings.HasPrefix(e.Object, "party#"):
		key = c.parties[node+"|"+e.Object]
		if key == "" && (e.Func == "ProtocolCmAddParty" || e.Func == "NdisClAddParty") && len(c.adds[node]) > 0 {
			key = c.adds[node][0]
			c.adds[node] = c.adds[node][1:]
			c.parties[node+"|"+e.Object] = key
		}
		if key == "" {
			key = "party|" + node + "|" + e.Object // a party of a VC not seen in the trace: a call of its own
		}
	default:
		if e.Kind == ndis.EventRequest && (e.Func == "NdisCoCreateVc" || e.Func == "NdisMCmCreateVc") {
			c.creates[node+"|"+e.Driver+"|"+e.Func] = r // its Return names the VC
		}
		return
	}
	g := c.file(key, r)
	ck := node + "|" + e.Driver + "|" + e.Func
	if cr, ok := c.creates[ck]; ok && e.Kind == ndis.EventReturn {
		delete(c.creates, ck)
		g.events = append(g.events, cr)
	}
	switch {
	case e.Kind == ndis.EventRequest && (e.Func == "NdisClMakeCall" || e.Func == "NdisClAddParty"):
		c.legs[node] = append(c.legs[node], key)
		if e.Func == "NdisClAddParty" {
			c.adds[node] = append(c.adds[node], key)
		}
	case e.Kind == ndis.EventRefused && (e.Func == "NdisClMakeCall" || e.Func == "NdisClAddParty"),
		e.Kind == ndis.EventReturn && (e.Func == "NdisClMakeCall" || e.Func == "NdisClAddParty") && e.Status != ndis.StatusPending,
		e.Kind == ndis.EventUpcall && (e.Func == "ProtocolClMakeCallComplete" || e.Func == "ProtocolClAddPartyComplete"):
		c.legDone(node, key)
		if e.Kind == ndis.EventRefused && e.Func == "NdisClAddParty" {
			c.adds[node] = remove(c.adds[node], key) // no party was made
		}
	case e.Kind == ndis.EventReturn && strings.HasSuffix(e.Func, "DeleteVc") && e.Status == ndis.StatusSuccess && strings.HasPrefix(key, "vc|"):
		g.vcs[key] = true
	}
}

// newCallOnVc starts a new call on a VC that already had one: the events
// of the VC from now on are the new call's.
func (c *Collector) newCallOnVc(node, obj string) {
	old := c.vcKey(node, obj)
	g := c.groups[old]
	if g == nil {
		return
	}
	made := false
	for _, r := range g.root().events {
		if r.NDIS != nil && r.Node == node && r.NDIS.Object == obj && r.NDIS.Func == "NdisClMakeCall" && r.NDIS.Kind == ndis.EventRequest {
			made = true
			break
		}
	}
	if !made {
		return // the VC's first call: its creation belongs to it
	}
	g.root().vcs[old] = true
	c.vcGen[node+"|"+obj]++
}

// legDone forgets the oldest outstanding MakeCall or AddParty of VC key on
// node: it completed, so it sends no more SETUPs.
func (c *Collector) legDone(node, key string) { c.legs[node] = remove(c.legs[node], key) }

func remove(s []string, v string) []string {
	if i := slices.Index(s, v); i >= 0 {
		return slices.Delete(s, i, i+1)
	}
	return s
}

// driverKind is what a driver of a node is to the chart, learnt from the
// functions it calls and handles.
type driverKind uint8

const (
	kindMiniport driverKind = 1 << iota // handles MiniportCo*, calls NdisMCo*
	kindCM                              // handles ProtocolCm*, calls NdisCm* or NdisMCm*: a call manager
	kindMCM                             // calls NdisMCm*: a miniport call manager (integrated)
)

// driverKindOf is what e shows its driver to be; 0 for a client's, or a
// call manager's that says nothing of its kind.
func driverKindOf(e *ndis.Event) driverKind {
	switch e.Kind {
	case ndis.EventRequest, ndis.EventReturn:
		switch {
		case strings.HasPrefix(e.Func, "NdisMCm"):
			return kindCM | kindMCM
		case strings.HasPrefix(e.Func, "NdisCm"):
			return kindCM
		case strings.HasPrefix(e.Func, "NdisMCo"):
			return kindMiniport
		}
	case ndis.EventUpcall, ndis.EventHandled:
		switch {
		case strings.HasPrefix(e.Func, "ProtocolCm"):
			return kindCM
		case strings.HasPrefix(e.Func, "Miniport"):
			return kindMiniport
		}
	}
	return 0
}

// ---- the wire ----

// wireBase names the call a message belongs to, the same on both of its
// nodes: the node that allocated the call reference, the other node, and
// the value. ok is false for the global call reference and for what is not
// Q.2931.
func wireBase(s *trace.Signal) (base string, t uni.MsgType, ok bool) {
	t, ref, ok := s.Header()
	if !ok || ref.Value == 0 {
		return "", 0, false
	}
	local := (s.Dir == trace.Out) != ref.Flag // flag 0 from the allocating side
	return callBase(s.Node, s.Peer, uni.CallID{Ref: ref.Value, Local: local}), t, true
}

func callBase(node, peer string, id uni.CallID) string {
	alloc, other := peer, node
	if id.Local {
		alloc, other = node, peer
	}
	return alloc + "|" + other + "|" + strconv.FormatUint(uint64(id.Ref), 10)
}

func (c *Collector) wireKey(base string) string {
	return "cr|" + base + "|" + strconv.Itoa(c.wireGen[base])
}

func (c *Collector) addSignal(r record) {
	s := r.Signal
	base, t, ok := wireBase(s)
	if !ok {
		return
	}
	key := c.wireKey(base)
	if t == uni.MsgSetup {
		// A SETUP after the call reference's last call ended begins a new
		// call (a SETUP again before that is T303's retransmission).
		if g := c.groups[key]; g != nil && (g.root().wires[key][r.Node] || g.root().over()) {
			c.wireGen[base]++
			key = c.wireKey(base)
		}
	}
	fresh := c.groups[key] == nil
	g := c.file(key, r)
	switch {
	case t == uni.MsgReleaseComplete:
		g.wires[key][r.Node] = true
	case t == uni.MsgSetup && s.Dir == trace.Out && fresh && len(c.legs[r.Node]) > 0:
		// The oldest MakeCall or AddParty still outstanding on the node
		// sent it: a point-to-multipoint call's leg to a further node.
		vc := c.legs[r.Node][0]
		c.legs[r.Node] = c.legs[r.Node][1:]
		c.union(key, vc)
	case t == uni.MsgAddParty && s.Dir == trace.Out:
		for _, vc := range c.legs[r.Node] {
			if c.group(vc) == g {
				c.legDone(r.Node, vc) // added on an existing leg: no SETUP will come
				break
			}
		}
	}
}

// ---- what the call manager says about calls and links ----

func (c *Collector) addCall(r record) {
	e := r.Call
	var keys []string
	if e.VC != "" {
		keys = append(keys, c.vcKey(r.Node, e.VC))
	}
	if e.Ref.Ref != 0 {
		keys = append(keys, c.wireKey(callBase(r.Node, e.Peer, e.Ref)))
	}
	switch len(keys) {
	case 0:
		return // nothing to tie it to
	case 2:
		c.union(keys[0], keys[1])
	}
	g := c.file(keys[0], r)
	// Without the node's mediator trace the VC's deletion is never seen:
	// the call manager's word that the call ended is the VC's end.
	if e.VC != "" && !c.ndis[r.Node] && (e.Event == trace.CallFailed || e.Event == trace.CallRefused || e.Event == trace.CallReleased) {
		g.vcs[keys[0]] = true
	}
}

// addLink notes a link event in every call not over yet that has a wire
// call between the node and the peer.
func (c *Collector) addLink(r record) {
	l := r.Link
	seen := map[*group]bool{}
	for _, g := range c.all {
		if g.parent != nil || g.written || seen[g] || g.over() {
			continue
		}
		for k := range g.wires {
			f := strings.Split(k, "|") // cr|alloc|other|ref|gen
			if (f[1] == r.Node && f[2] == l.Peer) || (f[1] == l.Peer && f[2] == r.Node) {
				g.events = append(g.events, r)
				seen[g] = true
				break
			}
		}
	}
}

// Ladders returns every call so far, in the order of their first events.
func (c *Collector) Ladders() []*Ladder {
	var ls []*Ladder
	for _, g := range c.all {
		if g.parent == nil && len(g.events) > 0 && g.carriesCall() {
			ls = append(ls, c.ladder(g))
		}
	}
	sortLadders(ls)
	return ls
}

// take returns the calls that have been over since before limit (all of
// them if every is set) and not drawn yet, marking them drawn and
// forgetting their keys, so that late events make calls of their own.
func (c *Collector) take(now, limit time.Time, every bool) []*Ladder {
	var ls []*Ladder
	var keep []*group
	for _, g := range c.all {
		if g.parent != nil || len(g.events) == 0 {
			continue
		}
		if !every && !g.written {
			if !g.over() {
				g.overAt = time.Time{}
			} else if g.overAt.IsZero() {
				g.overAt = now
			}
		}
		if g.written || (!every && (g.overAt.IsZero() || g.overAt.After(limit))) {
			keep = append(keep, g)
			continue
		}
		g.written = true // a group that is no call is forgotten undrawn
		if g.carriesCall() {
			ls = append(ls, c.ladder(g))
		}
	}
	if len(ls) > 0 {
		c.forgetWritten()
	}
	c.all = keep
	sortLadders(ls)
	return ls
}

// forgetWritten forgets the keys of the calls drawn, and what leads to
// them, so that a long stream holds only the calls in progress.
func (c *Collector) forgetWritten() {
	gone := map[string]bool{}
	for k, g := range c.groups {
		if g.root().written {
			gone[k] = true
			delete(c.groups, k)
		}
	}
	for k := range gone {
		base, gen := splitKey(k)
		switch {
		case strings.HasPrefix(k, "vc|") && c.vcGen[base] == gen:
			delete(c.vcGen, base)
		case strings.HasPrefix(k, "cr|") && c.wireGen[base] == gen:
			delete(c.wireGen, base)
		}
	}
	for p, k := range c.parties {
		if gone[k] {
			delete(c.parties, p)
		}
	}
	for _, m := range []map[string][]string{c.legs, c.adds} {
		for n, ks := range m {
			ks = slices.DeleteFunc(ks, func(k string) bool { return gone[k] })
			if len(ks) == 0 {
				delete(m, n)
			} else {
				m[n] = ks
			}
		}
	}
}

// splitKey splits "vc|node|vc#4|0" into "node|vc#4" and 0, and
// "cr|alpha|beta|1|0" into "alpha|beta|1" and 0.
func splitKey(k string) (base string, gen int) {
	i := strings.LastIndexByte(k, '|')
	gen, _ = strconv.Atoi(k[i+1:])
	return k[strings.IndexByte(k, '|')+1 : i], gen
}

func (c *Collector) ladder(g *group) *Ladder {
	evs := slices.Clone(g.events)
	slices.SortStableFunc(evs, func(a, b record) int {
		if n := a.Time.Compare(b.Time); n != 0 {
			return n
		}
		return cmp.Compare(a.seq, b.seq)
	})
	l := &Ladder{cms: map[string]map[string]driverKind{}, first: evs[0].seq}
	for _, r := range evs {
		l.Events = append(l.Events, r.Event)
	}
	for n, d := range c.cms {
		l.cms[n] = maps.Clone(d)
	}
	return l
}

func sortLadders(ls []*Ladder) {
	slices.SortStableFunc(ls, func(a, b *Ladder) int {
		if n := a.Events[0].Time.Compare(b.Events[0].Time); n != 0 {
			return n
		}
		return cmp.Compare(a.first, b.first)
	})
}
