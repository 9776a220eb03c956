// Package ndis is the CoNDIS mediator: the part of NDIS that hands out
// handles for address families, SAPs, VCs and parties, checks every request
// against the documented contract, and routes every request and completion
// between clients, call managers and miniports.
//
// Drivers talk to the mediator through the handle they were given when they
// attached: a *Binding for protocol drivers (clients and stand-alone call
// managers, the NdisCl*, NdisCm* and NdisCo* functions) and an *Adapter for
// miniports and miniport call managers (the NdisMCo* and NdisMCm* functions).
// The receiver of each method identifies the calling driver, which is what
// lets the mediator enforce rules such as "only the creator deletes a VC"
// (R-VC-5) and "NdisCm* only from stand-alone call managers" (R-GEN-9).
//
// Concurrency contract: any goroutine may call any method. The mediator holds
// no lock while a driver handler runs, so handlers may call back in (spec
// §3.0-6). A completion may arrive on any goroutine, even before the
// requester has seen StatusPending (R-GEN-10); the requester's completion
// handler is then delivered just before the request returns StatusPending.
//
// Misuse never panics: a refused request returns the status spec §10 gives
// and is reported as a Violation carrying its rule ID.
//
// # Locking
//
// The mediator has no global lock on a call's path: state is locked per
// object, as NDIS locks per object. Locks are taken in this order, never
// upwards, and never two of one level at once:
//
//  1. Mediator.topo: the topology. Adapters and their bindings (a
//     binding's bind-in-progress flag, its closed flag and the AF types it
//     was told about), AF registrations (their open count and withdrawal),
//     and the list of AF opens. Attaching, binding, unbinding, registering
//     address families, opening and closing them, withdrawing them, and
//     creating a stand-alone call manager's signalling VC take it; Snapshot
//     and Live take it to walk the topology. No call, SAP or data operation
//     takes it.
//  2. Af.mu: one AF open. Its state, its VCs (the list of VCs on the open
//     and what its deleted VCs counted), its SAPs (their states and
//     pendable operations) and its own pendable operations. A VC's
//     creation and deletion take it to list and unlist the VC; a SAP
//     operation takes its AF's. A signalling VC (no AF) is listed on its
//     call manager's binding under m.topo instead.
//  3. Mediator.oidMu: the routing records of OID requests.
//  4. Vc.mu: one VC. Its lifecycle, activation and call state, its
//     pendable operations, its parties (a Party is guarded by its VC's
//     lock), its data counters and the lists in flight on it. Every call
//     operation, completion and data operation on a VC takes it.
//  5. Leaf locks, held only briefly and never while taking another lock:
//     Mediator.earlyMu (completions parked for a handler still
//     running, and their records kept for reuse), Mediator.namesMu (instance names) and Mediator.vmu
//     (violations and the trace sequence).
//
// Lock hand-over is explicit: a function releases only the locks it took.
// A name ending in Locked means the caller holds the lock the function
// needs and keeps it; a name beginning with lock (lockLiveVc, lockCmVc,
// lockClientVc, lockCmParty) takes a VC's lock and returns holding it only
// when the handle passed its checks. Every refusal releases its caller's
// locks and then reports through reject, because reporting runs
// Options.OnViolation and the logger. No lock is held while a driver
// handler runs; OnViolation and Options.Trace may run with an object lock
// held, which is why they must not call into the mediator.
//
// A few fields are read without their lock, atomically: a binding's closed
// flag, an AF open's state, a SAP's state and a list's owner. Each read is
// a request's linearization point for that check, and the transitions it
// races cannot invalidate the request: a live outgoing VC keeps its AF from
// closing (R-AF-12), an AF open keeps its client's binding from closing
// (R-AF-23), an offer on a SAP being deregistered is one the SAP received
// (R-SAP-9), and a list is claimed with a compare-and-swap, so a list
// handed to two VCs at once is refused once (R-DATA-3).
//
// # What a call shares with other calls
//
// A call (BenchmarkCallLifecycle: two VCs created, a call made, indicated,
// connected, closed from one side and indicated on the other, both VCs
// deleted) takes about thirty locks, almost all of them its own:
//
//   - its two VCs' locks: private to the call;
//   - the caller's and the callee's AF lock, twice each (list the VC when
//     it is created, unlist it when it is deleted), held for a list
//     insert or removal. This is the only lock the calls of one client
//     share;
//   - the call counters: atomic adds on a counter shard of the processor
//     (P) the goroutine runs on (picked through a sync.Pool, whose Get and
//     Put stay on the current P), so on n cores n of the 64 shards are in
//     use, each in its own core's cache. A VC's data and party counters
//     live in the VC (in a block allocated on its first send, receive or
//     party, so that a call without data or parties does not carry them)
//     and are added to its AF's totals when it is deleted;
//   - its VCs' activation parameter records: taken from and given back to
//     a sync.Pool, whose Get and Put stay on the current P, so they are
//     shared with nothing (and a call leaves only its two VCs for the
//     collector);
//   - the mediator's object-number counter, an atomic add per VC (two per
//     call) on a cache line of its own: numbers follow creation order
//     across the node (af#3, then vc#4), which traces and charts rely on;
//   - lock-free reads of fixed handle fields and of the AF, SAP and binding
//     states: shared cache lines that are read, not written.
//
// On 16 cores every call therefore runs on its own locks but for its AF
// opens'; what it shares is the cache line of each end's AF open (its
// lock, taken twice per call per end) and the object-number counter
// (written twice per call). Such a line moves between cores in about
// 100 ns and is held for tens of nanoseconds, so the counter tops out
// around 5 M calls/s (1 s / (2 × 100 ns)), as does an AF open that is one
// end of every call; one that is both ends (a client calling itself)
// around 2.5 M. At the roughly 750 k calls/s one core makes here
// (BenchmarkCallLifecycle, in-memory drivers included), that is three to
// seven cores' worth of calls before a shared line, not a lock, becomes the
// limit; clients with their own AF opens add to it independently. A
// node's call path (Q.2931 over QUIC) spends two orders of magnitude more
// per call than the mediator, so the mediator does not limit it.
package ndis
