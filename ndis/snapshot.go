package ndis

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Snapshot is a picture of every object the mediator holds (each object
// consistent in itself; see Mediator.Snapshot), what
// `!ndiskd.af` and `!ndiskd.vc` show on Windows. Tests use it to assert that
// nothing was left behind.
type Snapshot struct {
	Adapters []AdapterInfo
	Afs      []AfInfo
	Saps     []SapInfo
	Vcs      []VcInfo
	Counters Counters
}

// AdapterInfo describes an adapter, its bindings and its AF registrations.
type AdapterInfo struct {
	Name          string
	MCM           bool
	Bindings      []string
	Registrations []RegistrationInfo
}

// RegistrationInfo describes an address-family registration.
type RegistrationInfo struct {
	AddressFamily AddressFamily
	CallManager   string
	Withdrawing   bool
	Opens         int
}

// AfInfo describes one client's open of an address family.
type AfInfo struct {
	Handle        string
	Client        string
	CallManager   string
	AddressFamily AddressFamily
	State         string
	Vcs, Saps     int
	Pending       []string // operations awaiting completion
}

// SapInfo describes a SAP.
type SapInfo struct {
	Handle  string
	Af      string
	Client  string
	State   string
	Sap     CoSap
	Pending []string
}

// VcInfo describes a VC, its call and its parties.
type VcInfo struct {
	Handle      string
	Kind        string
	Creator     string
	Client      string
	CallManager string
	Af          string
	Lifecycle   string
	Activation  string
	Call        string
	Closing     bool // NdisClCloseCall marked the VC (R-CLOSE-3)
	// LeftActive: the last call's close completed with the VC still active
	// and it has not been deactivated since; it carries no new call until
	// it is (R-CLOSE-8).
	LeftActive  bool
	CloseStatus string
	Multipoint  bool
	Parties     []PartyInfo
	Pending     []string
	SendsOut    int
	RecvsOut    int
	Stats       VcCounters
	Params      *CallParameters
}

// PartyInfo describes one party of a multipoint VC.
type PartyInfo struct {
	Handle  string
	State   string
	Pending []string
}

func pendingOf(pairs ...any) []string {
	var out []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1].(*opRec).busy() {
			out = append(out, pairs[i].(string))
		}
	}
	return out
}

// Snapshot returns the current state of every live object. Each object is
// read under its own lock, so each is consistent in itself and with its
// counters; the VCs of one AF open are read together, under its lock. A
// VC created or deleted on another open while the snapshot is taken may be
// missing or still shown. A quiescent mediator's snapshot is exact.
func (m *Mediator) Snapshot() Snapshot {
	var s Snapshot
	// Counters that only follow others are read first (closed before
	// made, deleted before created), so that an order that holds at every
	// instant (CallsClosed <= 2*CallsMade, VcsDeleted <= VcsCreated) holds
	// in the snapshot too.
	for i := range m.vcs.shards {
		s.Counters.CallsClosed += m.vcs.shards[i].into(callClosed)
	}
	// Count the violations without copying them: Violations() would make
	// every snapshot cost O(violations ever recorded).
	m.vmu.Lock()
	s.Counters.Violations = m.vtotal
	m.vmu.Unlock()

	// Each object is read under its own lock, each VC with its data and
	// party counters; those of deleted VCs are in the totals of the list
	// they left, read under the same lock as that list.
	var totals vcTotals
	m.topo.Lock()
	m.pruneRetiredLocked()
	for _, a := range m.adapters {
		ai := AdapterInfo{Name: a.name, MCM: a.mcm != nil}
		for _, b := range a.binds {
			ai.Bindings = append(ai.Bindings, b.name)
			s.Vcs = appendVcsLocked(s.Vcs, &b.sigVcs, &totals)
			totals.sum(&b.totals)
		}
		for _, r := range a.regs {
			ai.Registrations = append(ai.Registrations, RegistrationInfo{AddressFamily: r.af, CallManager: nameOf(r.owner()), Withdrawing: r.withdrawing, Opens: r.opens})
		}
		s.Adapters = append(s.Adapters, ai)
	}
	for _, af := range m.afs.items {
		af.mu.Lock()
		s.Afs = append(s.Afs, AfInfo{Handle: af.String(), Client: af.client.name, CallManager: nameOf(af.reg.owner()),
			AddressFamily: af.reg.af, State: af.getState().String(), Vcs: af.vcList.n, Saps: af.saps,
			Pending: pendingOf("OpenAf", &af.open, "CloseAf", &af.close, "NotifyCloseAf", &af.notify)})
		s.Saps = appendSapsLocked(s.Saps, af)
		s.Vcs = appendVcsLocked(s.Vcs, &af.vcList, &totals)
		totals.sum(&af.totals)
		af.mu.Unlock()
	}
	for _, af := range m.retired {
		af.mu.Lock()
		s.Vcs = appendVcsLocked(s.Vcs, &af.vcList, &totals)
		totals.sum(&af.totals)
		af.mu.Unlock()
	}
	totals.sum(&m.gone)
	m.topo.Unlock()

	sort.Slice(s.Vcs, func(i, j int) bool { return s.Vcs[i].Handle < s.Vcs[j].Handle })
	s.Counters.VcsDeleted = totals.deleted
	s.Counters.SendsForwarded = totals.sendsForwarded
	s.Counters.SendsRefused = totals.sendsRefused
	s.Counters.ReceivesIndicated = totals.receivesIndicated
	s.Counters.ReceivesDropped = totals.receivesDropped
	s.Counters.PartiesAdded = totals.partiesAdded
	s.Counters.PartiesDropped = totals.partiesDropped

	for i := range m.vcs.shards {
		sh := &m.vcs.shards[i]
		s.Counters.VcsCreated += sh.created.Load()
		s.Counters.CallsMade += sh.into(callOutSetup)
		s.Counters.CallsDispatched += sh.into(callOffered)
	}
	return s
}

// appendVcsLocked describes the VCs of list (its lock held), each read
// under its own lock, and adds what each counted to totals.
func appendVcsLocked(out []VcInfo, list *vcList, totals *vcTotals) []VcInfo {
	for v := list.head; v != nil; v = v.next {
		v.mu.Lock()
		totals.add(v)
		vi := VcInfo{Handle: v.String(), Kind: v.kind.String(), Creator: nameOf(v.creator()), Lifecycle: v.life.String(),
			Activation: v.act.String(), Call: v.call.String(), Closing: v.closingMark, LeftActive: v.leftActive, Multipoint: v.multipoint,
			Stats: v.counters(), Params: v.params.get(),
			Pending: pendingOf("MakeCall", &v.makeCall, "IncomingCall", &v.inCall, "CloseCall", &v.closeCall,
				"ModifyCallQoS", &v.qos, "ActivateVc", &v.activate, "DeactivateVc", &v.deactivate)}
		sends, recvs := v.outstanding()
		vi.SendsOut, vi.RecvsOut = int(sends), int(recvs)
		if v.client() != nil {
			vi.Client = v.client().name
		}
		if v.kind != vcSignaling {
			vi.CallManager = nameOf(v.cmOwner())
		} else {
			vi.CallManager = v.cmB.name
		}
		if v.af != nil {
			vi.Af = v.af.String()
		}
		if v.closeSeen {
			vi.CloseStatus = v.closeStatus.String()
		}
		for _, p := range v.partyList() {
			vi.Parties = append(vi.Parties, PartyInfo{Handle: p.String(), State: p.state.String(),
				Pending: pendingOf("AddParty", &p.add, "DropParty", &p.drop)})
		}
		v.mu.Unlock()
		out = append(out, vi)
	}
	return out
}

// LiveCounts are how many objects of each kind a mediator holds now: what
// Snapshot lists, counted.
type LiveCounts struct {
	Vcs     int // VCs not yet deleted, signalling VCs included
	Parties int // parties of point-to-multipoint calls (a point-to-point call has none), being added included
	Saps    int // SAPs registered or being registered or deregistered
}

// Live counts the objects the mediator holds, without copying them as
// Snapshot does: its cost grows with the address-family opens, not the VCs,
// so a metrics scrape of a node with a million calls stays cheap.
func (m *Mediator) Live() LiveCounts {
	var c LiveCounts
	for i := range m.vcs.shards {
		c.Parties += int(m.vcs.shards[i].parties.Load())
	}
	m.topo.Lock()
	m.pruneRetiredLocked()
	for _, a := range m.adapters {
		for _, b := range a.binds {
			c.Vcs += b.sigVcs.n
		}
	}
	for _, af := range m.afs.items {
		af.mu.Lock()
		c.Vcs += af.vcList.n
		c.Saps += af.saps
		af.mu.Unlock()
	}
	for _, af := range m.retired {
		af.mu.Lock()
		c.Vcs += af.vcList.n
		af.mu.Unlock()
	}
	m.topo.Unlock()
	return c
}

// CallStates counts the VCs the mediator holds now (Live's) by the state
// of their call, named as Snapshot's VcInfo.Call names it; states no VC
// is in are left out. It reads counters kept as calls move, so it costs
// the same with a million VCs as with none, and stops no call: a snapshot
// walks every VC under its AF's lock. Taken while calls move, the counts
// may be of slightly different instants (a call moving between two
// states may be in neither); they are exact once the calls are still.
func (m *Mediator) CallStates() map[string]int {
	var n [callStates]uint64 // wraps while summing, not at the end
	for i := range m.vcs.shards {
		sh := &m.vcs.shards[i]
		for from := range n {
			n[from] += sh.listed[from].Load() - sh.unlisted[from].Load()
			for to := range n {
				k := sh.moves[from][to].Load()
				n[from], n[to] = n[from]-k, n[to]+k
			}
		}
	}
	out := make(map[string]int)
	for c, k := range n {
		if k != 0 {
			out[callState(c).String()] = int(int64(k))
		}
	}
	return out
}

// VcClient finds the VC that String names (vc#N) among those the mediator
// holds now, and returns the name of its client ("" for a signalling VC,
// which has none); ok is false if there is no such VC. It compares
// identities, which are fixed, without a VC's lock and without describing
// any VC: a snapshot would, for every VC, under its AF's lock, and with a
// million calls up that stops the node's calls for seconds.
func (m *Mediator) VcClient(name string) (client string, ok bool) {
	num, isVc := strings.CutPrefix(name, "vc#")
	id, err := strconv.ParseUint(num, 10, 64)
	if !isVc || err != nil {
		return "", false
	}
	find := func(l *vcList) *Vc {
		for v := l.head; v != nil; v = v.next {
			if v.id == id {
				return v
			}
		}
		return nil
	}
	m.topo.Lock()
	defer m.topo.Unlock()
	for _, a := range m.adapters {
		for _, b := range a.binds {
			if find(&b.sigVcs) != nil {
				return "", true
			}
		}
	}
	for _, afs := range [][]*Af{m.afs.items, m.retired} {
		for _, af := range afs {
			af.mu.Lock()
			v := find(&af.vcList)
			af.mu.Unlock()
			if v != nil {
				return af.client.name, true
			}
		}
	}
	return "", false
}

// Saps lists the SAPs as Snapshot does, without the rest of a snapshot
// (which walks every VC).
func (m *Mediator) Saps() []SapInfo {
	var out []SapInfo
	m.topo.Lock()
	for _, af := range m.afs.items {
		af.mu.Lock()
		out = appendSapsLocked(out, af)
		af.mu.Unlock()
	}
	m.topo.Unlock()
	return out
}

// Empty reports whether no AF open, SAP or VC is left.
func (s Snapshot) Empty() bool { return len(s.Afs) == 0 && len(s.Saps) == 0 && len(s.Vcs) == 0 }

// String renders the snapshot in the spirit of !ndiskd.af / !ndiskd.vc.
func (s Snapshot) String() string {
	var b strings.Builder
	for _, a := range s.Adapters {
		kind := "CoNDIS miniport"
		if a.MCM {
			kind = "miniport call manager"
		}
		fmt.Fprintf(&b, "adapter %s (%s) bindings=%v\n", a.Name, kind, a.Bindings)
		for _, r := range a.Registrations {
			fmt.Fprintf(&b, "  AF %v v%d.%d by %s opens=%d withdrawing=%v\n", r.AddressFamily.AddressFamily,
				r.AddressFamily.MajorVersion, r.AddressFamily.MinorVersion, r.CallManager, r.Opens, r.Withdrawing)
		}
	}
	for _, af := range s.Afs {
		fmt.Fprintf(&b, "%s client=%s cm=%s state=%s vcs=%d saps=%d pending=%v\n", af.Handle, af.Client, af.CallManager, af.State, af.Vcs, af.Saps, af.Pending)
	}
	for _, sp := range s.Saps {
		fmt.Fprintf(&b, "%s on %s client=%s state=%s pending=%v\n", sp.Handle, sp.Af, sp.Client, sp.State, sp.Pending)
	}
	for _, v := range s.Vcs {
		fmt.Fprintf(&b, "%s %s creator=%s client=%s cm=%s af=%s %s/%s/%s closing=%v parties=%d pending=%v sends=%d recvs=%d tx=%d rx=%d\n",
			v.Handle, v.Kind, v.Creator, v.Client, v.CallManager, v.Af, v.Lifecycle, v.Activation, v.Call,
			v.Closing, len(v.Parties), v.Pending, v.SendsOut, v.RecvsOut, v.Stats.TxPackets, v.Stats.RxPackets)
	}
	return b.String()
}

// Audit reports, as violations, everything a quiescent system must not have:
// operations that pended and were never completed (R-GEN-2), and AF opens,
// SAPs and VCs still alive (R-VC-14, R-AF-23). It returns what it reported.
// Call it when every driver believes it is done, e.g. at the end of a test.
func (m *Mediator) Audit() []Violation {
	s := m.Snapshot()
	var out []Violation
	for _, af := range s.Afs {
		for _, p := range af.Pending {
			out = append(out, Violation{Rule: "R-GEN-2", Func: p, Driver: af.CallManager, Object: af.Handle, Detail: "pended and never completed"})
		}
		out = append(out, Violation{Rule: "R-AF-23", Func: "audit", Driver: af.Client, Object: af.Handle, Detail: "AF still open (" + af.State + ")"})
	}
	for _, sp := range s.Saps {
		for _, p := range sp.Pending {
			out = append(out, Violation{Rule: "R-GEN-2", Func: p, Object: sp.Handle, Detail: "pended and never completed"})
		}
	}
	for _, v := range s.Vcs {
		for _, p := range v.Pending {
			out = append(out, Violation{Rule: "R-GEN-2", Func: p, Object: v.Handle, Detail: "pended and never completed"})
		}
		for _, pt := range v.Parties {
			for _, p := range pt.Pending {
				out = append(out, Violation{Rule: "R-GEN-2", Func: p, Object: pt.Handle, Detail: "pended and never completed"})
			}
		}
		out = append(out, Violation{Rule: "R-VC-14", Func: "audit", Driver: v.Creator, Object: v.Handle, Detail: "VC not deleted (" + v.Call + ", " + v.Activation + ")"})
	}
	for _, v := range out {
		m.report(v)
	}
	return out
}

// appendSapsLocked lists the live SAPs of af (af.mu held).
func appendSapsLocked(out []SapInfo, af *Af) []SapInfo {
	for _, sp := range af.sapList {
		if sp.getState() == sapDead {
			continue
		}
		out = append(out, SapInfo{Handle: sp.String(), Af: af.String(), Client: af.client.name, State: sp.getState().String(),
			Sap: *sp.coSap, Pending: pendingOf("RegisterSap", &sp.reg, "DeregisterSap", &sp.dereg)})
	}
	return out
}
