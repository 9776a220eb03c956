package ladder

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/uni"
)

// Ladder is one call: its events on every traced node, in time order.
type Ladder struct {
	Events []Event

	cms   map[string]map[string]driverKind // node → what its call manager and miniport drivers are
	first uint64                           // arrival of the first event, to order calls with equal times
}

// Column roles, left to right on the call's first node.
const (
	roleClient = iota
	roleNDIS
	roleNIC  // a CoNDIS miniport without call management (the split topology's)
	roleMCM  // the node's call manager: a miniport call manager, or a stand-alone one (CM)
	rolePeer // a peer node whose own events are not in the trace
)

// column is a participant of the chart.
type column struct {
	node, driver string
	role         int
	standAlone   bool // roleMCM: the node's call manager is a stand-alone one
}

// name is the column's heading: "alice@alpha", "NDIS@alpha", "MCM@alpha"
// (a miniport call manager) or "CM@gamma" (a stand-alone one),
// "gamma-nic@gamma" (a miniport without call management), or a bare
// peer's name.
func (c column) name() string {
	switch c.role {
	case roleClient, roleNIC:
		return c.driver + "@" + c.node
	case roleNDIS:
		return "NDIS@" + c.node
	case roleMCM:
		if c.standAlone {
			return "CM@" + c.node
		}
		return "MCM@" + c.node
	}
	return c.node
}

// Arrow styles.
const (
	solid   = iota // a call, an upcall, a message
	dashed         // a return
	refused        // the mediator refused a request
	note           // something said about the call at one column
)

// row is one line of the chart.
type row struct {
	at       time.Duration // since the call's first event
	from, to int           // columns; equal for a note
	style    int
	label    string
}

// chart lays the ladder out: its columns and rows.
func (l *Ladder) chart() ([]column, []row) {
	if len(l.Events) == 0 {
		return nil, nil
	}
	var nodes []string // traced nodes, in order of appearance
	clients, nics := map[string][]string{}, map[string][]string{}
	hasNDIS, traced := map[string]bool{}, map[string]bool{}
	for _, e := range l.Events {
		if !traced[e.Node] {
			traced[e.Node] = true
			nodes = append(nodes, e.Node)
		}
		if e.NDIS != nil {
			hasNDIS[e.Node] = true
			d := e.NDIS.Driver
			switch {
			case l.isCM(e.Node, d):
			case l.isNIC(e.Node, d):
				if !slices.Contains(nics[e.Node], d) {
					nics[e.Node] = append(nics[e.Node], d)
				}
			case !slices.Contains(clients[e.Node], d):
				clients[e.Node] = append(clients[e.Node], d)
			}
		}
	}
	var peers []string
	for _, e := range l.Events {
		if p := peerOf(e); p != "" && !traced[p] && !slices.Contains(peers, p) {
			peers = append(peers, p)
		}
	}
	var cols []column
	at := map[column]int{}
	add := func(c column) {
		at[c] = len(cols)
		cols = append(cols, c)
	}
	for i, n := range nodes {
		mine := []column{}
		for _, d := range clients[n] {
			mine = append(mine, column{node: n, driver: d, role: roleClient})
		}
		if hasNDIS[n] {
			mine = append(mine, column{node: n, role: roleNDIS})
		}
		for _, d := range nics[n] {
			mine = append(mine, column{node: n, driver: d, role: roleNIC})
		}
		mine = append(mine, l.cmColumn(n))
		if i > 0 {
			slices.Reverse(mine) // the far side mirrors the near one
		}
		for _, c := range mine {
			add(c)
		}
	}
	for _, p := range peers {
		add(column{node: p, role: rolePeer})
	}
	mcm := func(n string) int {
		if traced[n] {
			return at[l.cmColumn(n)]
		}
		return at[column{node: n, role: rolePeer}]
	}

	var rows []row
	t0 := l.Events[0].Time
	for _, e := range l.Events {
		r := row{at: e.Time.Sub(t0)}
		switch {
		case e.NDIS != nil:
			x := e.NDIS
			d := column{node: e.Node, driver: x.Driver, role: roleClient}
			switch {
			case l.isCM(e.Node, x.Driver):
				d = l.cmColumn(e.Node)
			case l.isNIC(e.Node, x.Driver):
				d.role = roleNIC
			}
			dc, nc := at[d], at[column{node: e.Node, role: roleNDIS}]
			switch x.Kind {
			case ndis.EventRequest:
				r.from, r.to, r.label = dc, nc, x.Func+"("+x.Object+")"
			case ndis.EventReturn:
				r.from, r.to, r.style, r.label = nc, dc, dashed, x.Func+" = "+x.Status.String()
			case ndis.EventUpcall:
				r.from, r.to, r.label = nc, dc, x.Func+"("+x.Object+upcallStatus(x)+")"
			case ndis.EventHandled:
				r.from, r.to, r.style, r.label = dc, nc, dashed, x.Func+" = "+x.Status.String()
			case ndis.EventRefused:
				r.from, r.to, r.style, r.label = nc, dc, refused, x.Func+"("+x.Object+") refused: "+x.Status.String()
			default:
				continue
			}
		case e.Signal != nil:
			s := e.Signal
			if s.Dir == trace.In && traced[s.Peer] {
				continue // drawn where it was sent
			}
			r.from, r.to, r.label = mcm(e.Node), mcm(s.Peer), SignalLabel(*s)
			if s.Dir == trace.In {
				r.from, r.to = r.to, r.from
			}
		case e.Call != nil:
			r.from, r.style, r.label = mcm(e.Node), note, CallLabel(*e.Call)
			r.to = r.from
		case e.Link != nil:
			r.from, r.style, r.label = mcm(e.Node), note, LinkLabel(*e.Link)
			r.to = r.from
		default:
			continue
		}
		rows = append(rows, r)
	}
	return cols, rows
}

// isCM reports whether driver is node's call manager.
func (l *Ladder) isCM(node, driver string) bool { return l.cms[node][driver]&kindCM != 0 }

// isNIC reports whether driver is a miniport of node without call
// management (the split topology's).
func (l *Ladder) isNIC(node, driver string) bool { return l.cms[node][driver] == kindMiniport }

// cmColumn is node's call manager column: stand-alone if a driver of node
// acts as a call manager and none as a miniport call manager.
func (l *Ladder) cmColumn(node string) column {
	cm, mcm := false, false
	for _, k := range l.cms[node] {
		cm = cm || k&kindCM != 0
		mcm = mcm || k&kindMCM != 0
	}
	return column{node: node, role: roleMCM, standAlone: cm && !mcm}
}

// upcallStatus shows the status a completion or an indication carries
// (SUCCESS is Status 0, so it is shown for the completions only).
func upcallStatus(x *ndis.Event) string {
	if x.Status != 0 || strings.HasSuffix(x.Func, "Complete") || strings.HasSuffix(x.Func, "CompleteEx") {
		return ", " + x.Status.String()
	}
	return ""
}

func peerOf(e Event) string {
	switch {
	case e.Signal != nil:
		return e.Signal.Peer
	case e.Call != nil:
		return e.Call.Peer
	case e.Link != nil:
		return e.Link.Peer
	}
	return ""
}

// Title says who called whom and how it went, from the call's SETUPs and
// the call manager's call events: "alice@alpha -> beta/echo (connected;
// released by the network: normal call clearing (16))".
func (l *Ladder) Title() string {
	if len(l.Events) == 0 {
		return "no events"
	}
	caller, callerNode := "", ""
	var dests []string
	for _, e := range l.Events {
		s := e.Signal
		if s == nil {
			continue
		}
		if t, _, ok := s.Header(); !ok || t != uni.MsgSetup {
			continue
		}
		from, to := s.Node, s.Peer
		if s.Dir == trace.In {
			from, to = to, from
		}
		if callerNode == "" {
			callerNode = from
		}
		if from != callerNode {
			continue
		}
		d := to
		if m, err := s.Decode(); err == nil && m.BHLI != nil {
			if svc, ok := m.BHLI.ServiceName(); ok {
				d += "/" + svc
			}
		}
		if !slices.Contains(dests, d) {
			dests = append(dests, d)
		}
	}
	for _, e := range l.Events {
		if c := e.Call; c != nil && callerNode == "" {
			if c.Incoming {
				callerNode = c.Peer
				dests = append(dests, c.Node+"/"+c.Service)
			} else {
				callerNode = c.Node
				dests = append(dests, c.Peer+"/"+c.Service)
			}
		}
		if x := e.NDIS; x != nil && caller == "" && e.Node == callerNode && x.Func == "NdisClMakeCall" && x.Kind == ndis.EventRequest {
			caller = x.Driver + "@" + e.Node
		}
	}
	if caller == "" {
		caller = callerNode
	}
	if caller == "" {
		caller = l.Events[0].Node
	}
	var outcome []string
	for _, e := range l.Events {
		if c := e.Call; c != nil && (c.Node == callerNode || callerNode == "") {
			outcome = append(outcome, shortCall(*c))
		}
	}
	if len(outcome) == 0 { // the caller's node is not traced: say how the callee's went
		for _, e := range l.Events {
			if c := e.Call; c != nil {
				outcome = append(outcome, c.Node+" "+shortCall(*c))
			}
		}
	}
	title := caller
	if len(dests) > 0 {
		title += " -> " + strings.Join(dests, ", ")
	}
	if len(outcome) > 0 {
		title += " (" + strings.Join(outcome, "; ") + ")"
	}
	return title
}

// shortCall is a call event in a few words: "released by the network:
// normal call clearing (16)".
func shortCall(c trace.Call) string {
	s := c.Event.String()
	if c.Event == trace.CallReleased {
		if c.ByPeer {
			s += " by the network"
		} else {
			s += " by the client"
		}
	}
	if c.Cause != 0 {
		s += ": " + c.Cause.String()
	}
	return s
}

// WriteText draws the ladder as fixed-width text: a column per participant
// (the clients, NDIS and the call manager of each traced node, and each
// peer that is not traced), a line per event with the milliseconds since
// the call's first event, the arrow, and its label at the right.
func (l *Ladder) WriteText(w io.Writer) error {
	cols, rows := l.chart()
	width := 10
	for _, c := range cols {
		width = max(width, len(c.name())+2)
	}
	bw := bufio.NewWriter(w)
	const margin = "       ms  "
	hdr := []byte(strings.Repeat(" ", width*len(cols)))
	for i, c := range cols {
		n := c.name()
		copy(hdr[i*width+(width-len(n))/2:], n)
	}
	fmt.Fprintf(bw, "%s%s\n", margin, strings.TrimRight(string(hdr), " "))
	line := make([]byte, width*len(cols))
	for _, r := range rows {
		for i := range line {
			line[i] = ' '
		}
		for i := range cols {
			line[i*width+width/2] = '|'
		}
		a, b := r.from*width+width/2, r.to*width+width/2
		switch {
		case r.style == note:
			line[a] = '*'
		case a < b:
			fill(line[a+1:b], r.style)
			line[b-1] = arrowHead(r.style, '>')
		default:
			fill(line[b+1:a], r.style)
			line[b+1] = arrowHead(r.style, '<')
		}
		fmt.Fprintf(bw, "%9.3f  %s  %s\n", ms(r.at), line, r.label)
	}
	return bw.Flush()
}

func fill(b []byte, style int) {
	for i := range b {
		b[i] = '-'
		if style == dashed && i%2 == 1 {
			b[i] = ' '
		}
	}
}

func arrowHead(style int, h byte) byte {
	if style == refused {
		return 'x'
	}
	return h
}

// WriteMermaid draws the ladder as a Mermaid sequenceDiagram: a participant
// per column, an arrow per event (->> a call, an upcall or a message;
// -->> a return; -x a refused request), a note for what the call manager
// says about the call and its links.
func (l *Ladder) WriteMermaid(w io.Writer) error {
	cols, rows := l.chart()
	ids := make([]string, len(cols))
	used := map[string]bool{}
	for i, c := range cols {
		id := mermaidID(c)
		for n := 2; used[id]; n++ {
			id = fmt.Sprintf("%s_%d", mermaidID(c), n)
		}
		used[id] = true
		ids[i] = id
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "sequenceDiagram")
	for i, c := range cols {
		fmt.Fprintf(bw, "    participant %s as %s\n", ids[i], mermaidText(c.name()))
	}
	for _, r := range rows {
		label := mermaidText(r.label)
		switch r.style {
		case note:
			fmt.Fprintf(bw, "    Note over %s: %s\n", ids[r.from], label)
		case dashed:
			fmt.Fprintf(bw, "    %s-->>%s: %s\n", ids[r.from], ids[r.to], label)
		case refused:
			fmt.Fprintf(bw, "    %s-x%s: %s\n", ids[r.from], ids[r.to], label)
		default:
			fmt.Fprintf(bw, "    %s->>%s: %s\n", ids[r.from], ids[r.to], label)
		}
	}
	return bw.Flush()
}

// mermaidID is a participant's identifier: letters, digits and '_'.
func mermaidID(c column) string {
	var id string
	switch c.role {
	case roleClient:
		id = "client_" + c.node + "_" + c.driver
	case roleNDIS:
		id = "ndis_" + c.node
	case roleNIC:
		id = "nic_" + c.node + "_" + c.driver
	case roleMCM:
		id = "mcm_" + c.node
	default:
		id = "peer_" + c.node
	}
	return strings.Map(func(r rune) rune {
		if r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, id)
}

// mermaidText escapes what Mermaid reads in a message or a note: '#' starts
// an entity and ';' ends a statement, so both are written as entities.
func mermaidText(s string) string {
	return strings.NewReplacer("#", "#35;", ";", "#59;", "\n", " ").Replace(s)
}

// Format is how Write draws calls.
type Format uint8

// Formats. The zero value is not one.
const (
	Text     Format = iota + 1 // "call N: title", then the text chart
	Markdown                   // "## N. title", then the Mermaid chart in a fenced block
)

// Write draws ls, numbered from first, in format f.
func Write(w io.Writer, f Format, first int, ls []*Ladder) error {
	for i, l := range ls {
		var err error
		switch f {
		case Text:
			if _, err = fmt.Fprintf(w, "call %d: %s\n", first+i, l.Title()); err == nil {
				err = l.WriteText(w)
			}
			if err == nil {
				_, err = fmt.Fprintln(w)
			}
		case Markdown:
			if _, err = fmt.Fprintf(w, "## %d. %s\n\n```mermaid\n", first+i, l.Title()); err == nil {
				err = l.WriteMermaid(w)
			}
			if err == nil {
				_, err = fmt.Fprint(w, "```\n\n")
			}
		default:
			return fmt.Errorf("ladder: unknown format %d", f)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
