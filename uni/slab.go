package uni

// slab hands out storage for the Outputs a Link returns and the messages
// it builds, carved from blocks of blockLen elements so that most inputs
// allocate nothing for them. Storage once handed out is never handed out
// again: an Output, and every message in it, stays valid and unchanged
// however long its receiver keeps it, whatever the Link does next. The
// price is that a block stays reachable while any part of it is.
type slab[T any] struct {
	free []T
}

// slabBlock is the number of elements of a block: small, so that a block
// kept alive by one old Output pins little.
const slabBlock = 32

// take returns an empty slice with room for n elements of storage no one
// else has.
func (s *slab[T]) take(n int) []T {
	if len(s.free) < n {
		s.free = make([]T, max(n, slabBlock))
	}
	x := s.free[:0:n]
	s.free = s.free[n:]
	return x
}

// one returns one zero element no one else has.
func (s *slab[T]) one() *T { return &s.take(1)[:1][0] }

// Room an Output gets for each kind of entry when the Link first adds one:
// what most inputs need (one message, one timer started or stopped, one
// indication). More grows the slice as append does.
const (
	outMessages    = 1
	outTimers      = 1
	outIndications = 1
)

// linkMessage is a message the Link builds with the one cause it carries.
type linkMessage struct {
	m     Message
	cause [1]CauseIE
}

// newMessage returns a message of the Link's own, of type t with the call
// reference cr and the causes given (copied), for the Output of the
// current input. With reuse it is valid only until the next input (see
// Output): the Link's state must not keep it or point into it.
func (l *Link) newMessage(t MsgType, cr CallRef, causes ...CauseIE) *Message {
	var m *Message
	switch {
	case l.reuse:
		if l.nbuilt == len(l.built) {
			l.built = append(l.built, new(linkMessage))
		}
		x := l.built[l.nbuilt]
		l.nbuilt++
		*x = linkMessage{}
		m = &x.m
		switch len(causes) {
		case 0:
		case 1:
			x.cause[0] = causes[0]
			m.Causes = x.cause[:1:1]
		default:
			m.Causes = append([]CauseIE(nil), causes...)
		}
	case len(causes) == 0:
		m = l.msgSlab.one()
	case len(causes) == 1:
		x := l.causeMsgSlab.one()
		x.cause[0] = causes[0]
		m = &x.m
		m.Causes = x.cause[:1:1]
	default:
		m = l.msgSlab.one()
		m.Causes = append([]CauseIE(nil), causes...)
	}
	m.Type, m.CallRef = t, cr
	return m
}

// keptCause returns a copy of cause for call state to keep, which only
// reads it. A cause without a diagnostic (most are) is shared by every
// call that keeps the same one; others are carved from blocks shared by
// many calls.
func (l *Link) keptCause(cause CauseIE) *CauseIE {
	if cause.Diagnostic == nil {
		k := plainCauseKey(cause.Instruction)<<16 | plainCauseKey(cause.Location)<<8 | plainCauseKey(cause.Value)
		if c := l.plainCauses[k]; c != nil {
			return c
		}
		if len(l.plainCauses) < maxPlainCauses {
			c := &CauseIE{Instruction: cause.Instruction, Location: cause.Location, Value: cause.Value}
			if l.plainCauses == nil {
				l.plainCauses = map[plainCauseKey]*CauseIE{}
			}
			l.plainCauses[k] = c
			return c
		}
	}
	c := l.causeSlab.one()
	*c = cause
	return c
}

// plainCauseKey packs a cause without a diagnostic: instruction,
// location, value.
type plainCauseKey uint32

// maxPlainCauses bounds the causes keptCause shares, so that a peer
// sending every combination cannot grow the map without end.
const maxPlainCauses = 64
