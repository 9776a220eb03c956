package uni

// A call in U1 keeps its SETUP's encoding for the T303 retransmission
// (Q.2931 5.5.1.3). The encodings are carved from blocks shared by many
// calls, and a block is used again once no call holds a piece of it: a
// call holds its piece only until CALL PROCEEDING, CONNECT or its end (at
// most two T303 periods), so a calling node making calls at a high rate
// reuses a few blocks instead of leaving a hundred octets of garbage
// behind per call.

// setupBlockSize is the size of a block: a dozen or more SETUPs.
const setupBlockSize = 2048

// maxSetupSpares bounds the emptied blocks a Link keeps for later.
const maxSetupSpares = 8

// setupBlock is storage SETUP encodings are carved from.
type setupBlock struct {
	buf  []byte
	used int // octets carved since the block was last empty
	held int // pieces calls hold
}

// keptSetup is a call's piece of a setupBlock: its SETUP's encoding. The
// zero keptSetup holds none.
type keptSetup struct {
	b      *setupBlock
	off, n uint32
}

// bytes returns the encoding, nil if k holds none.
func (k keptSetup) bytes() []byte {
	if k.b == nil {
		return nil
	}
	return k.b.buf[k.off : k.off+k.n : k.off+k.n]
}

// keepSetup returns a copy of the SETUP encoding b for a call to keep,
// carved from the current block (or, when it has no room, another).
func (l *Link) keepSetup(b []byte) keptSetup {
	blk := l.setupCur
	if blk == nil || len(blk.buf)-blk.used < len(b) {
		blk = l.nextSetupBlock(len(b))
	}
	off := blk.used
	copy(blk.buf[off:], b)
	blk.used += len(b)
	blk.held++
	return keptSetup{b: blk, off: uint32(off), n: uint32(len(b))}
}

// nextSetupBlock makes a block with room for n octets current: a spare,
// or a new one. The block it replaces goes to the spares if no call holds
// a piece of it, else once the last piece is dropped (dropSetup).
func (l *Link) nextSetupBlock(n int) *setupBlock {
	if cur := l.setupCur; cur != nil && cur.held == 0 {
		l.spareSetupBlock(cur)
	}
	var blk *setupBlock
	if k := len(l.setupSpares); k > 0 && n <= setupBlockSize {
		blk = l.setupSpares[k-1]
		l.setupSpares[k-1] = nil
		l.setupSpares = l.setupSpares[:k-1]
	} else {
		blk = &setupBlock{buf: make([]byte, max(n, setupBlockSize))}
	}
	l.setupCur = blk
	return blk
}

// dropSetup lets go of c's SETUP encoding, if it holds one. A block no
// call holds a piece of any more is carved from the start again if it is
// the current one, else kept as a spare.
func (l *Link) dropSetup(c *call) {
	blk := c.setup.b
	if blk == nil {
		return
	}
	c.setup = keptSetup{}
	blk.held--
	if blk.held > 0 {
		return
	}
	if blk == l.setupCur {
		blk.used = 0
		return
	}
	l.spareSetupBlock(blk)
}

// spareSetupBlock keeps an emptied block of the usual size for later, up
// to maxSetupSpares; the rest are left to the collector.
func (l *Link) spareSetupBlock(blk *setupBlock) {
	if len(blk.buf) != setupBlockSize || len(l.setupSpares) >= maxSetupSpares {
		return
	}
	blk.used = 0
	l.setupSpares = append(l.setupSpares, blk)
}
