// Package logtext is a slog.Handler that writes what slog.TextHandler
// writes, octet for octet, in a fraction of its time for the records a
// node logs most: a message and attributes holding strings, integers,
// booleans, floats and durations. A busy node logs a few lines per call
// (node's call log), and slog.TextHandler's general machinery (attribute
// resolution, groups, ReplaceAttr, a state per record) took about a tenth
// of its CPU at tens of thousands of calls a second.
//
// Any other record (an error or another value of kind Any, a time, a
// group, a key that needs quoting) goes to a slog.TextHandler with the
// same options and attributes, writing to the same writer under the same
// lock, so the output is slog's either way. Only HandlerOptions.Level is
// supported: AddSource and ReplaceAttr are refused by New.
package logtext

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Handler is a slog.Handler writing slog's text format (see the package
// documentation).
type Handler struct {
	out   *lockedWriter
	level slog.Leveler
	// pre is the attributes of WithAttrs, formatted: " k=v" each.
	pre []byte
	// slow: WithGroup, or a WithAttrs attribute this handler does not
	// format itself: every record then goes to slow.
	slow     bool
	fallback slog.Handler
}

// lockedWriter serialises the writes of a Handler, of the handlers it
// derives and of their slog.TextHandlers: one line, one Write, whole.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// New returns a Handler writing to w with opts (nil: level info).
func New(w io.Writer, opts *slog.HandlerOptions) (*Handler, error) {
	var o slog.HandlerOptions
	if opts != nil {
		o = *opts
	}
	if o.AddSource || o.ReplaceAttr != nil {
		return nil, errors.New("logtext: AddSource and ReplaceAttr are not supported")
	}
	level := o.Level
	if level == nil {
		level = slog.LevelInfo
	}
	out := &lockedWriter{w: w}
	return &Handler{out: out, level: level, fallback: slog.NewTextHandler(out, &o)}, nil
}

// Enabled reports whether records at l are written.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

// WithAttrs returns a Handler whose records carry as after their message.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	h2 := *h
	h2.fallback = h.fallback.WithAttrs(as)
	h2.pre = append([]byte(nil), h.pre...)
	for _, a := range as {
		var ok bool
		if h2.pre, ok = appendAttr(h2.pre, a); !ok {
			h2.slow = true
		}
	}
	return &h2
}

// WithGroup returns a Handler whose attributes are in group name; slog's
// TextHandler writes all its records.
func (h *Handler) WithGroup(name string) slog.Handler {
	h2 := *h
	h2.fallback = h.fallback.WithGroup(name)
	h2.slow = h.slow || name != ""
	return &h2
}

var lines = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// Handle writes r as one line.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	written, err := h.write(r.Time, r.Level, r.Message, func(b []byte) ([]byte, bool) {
		ok := true
		r.Attrs(func(a slog.Attr) bool {
			b, ok = appendAttr(b, a)
			return ok
		})
		return b, ok
	})
	if written {
		return err
	}
	return h.fallback.Handle(ctx, r)
}

// Line writes the line Handle writes for a record of t, level, msg and
// attrs, without making the record: a slog.Record holds five attributes
// and allocates room for more, and the node's call lines have up to
// eight, a few times per call. A line this package leaves to slog goes to
// it as a Record, as with Handle.
func (h *Handler) Line(ctx context.Context, t time.Time, level slog.Level, msg string, attrs ...slog.Attr) error {
	written, err := h.write(t, level, msg, func(b []byte) ([]byte, bool) {
		ok := true
		for _, a := range attrs {
			if b, ok = appendAttr(b, a); !ok {
				break
			}
		}
		return b, ok
	})
	if written {
		return err
	}
	r := slog.NewRecord(t, level, msg, 0)
	r.AddAttrs(attrs...)
	return h.fallback.Handle(ctx, r)
}

// write writes one line: time, level, message, the attributes of
// WithAttrs and those attrs appends. It writes nothing and reports false
// if the line is slog's to write: h is slow, or attrs reports false.
func (h *Handler) write(t time.Time, level slog.Level, msg string, attrs func([]byte) ([]byte, bool)) (written bool, err error) {
	if h.slow {
		return false, nil
	}
	bp := lines.Get().(*[]byte)
	b := (*bp)[:0]
	defer func() { *bp = b; lines.Put(bp) }() // keeps what append grew
	if !t.IsZero() {
		b = append(b, "time="...)
		b = appendTime(b, t)
		b = append(b, ' ')
	}
	b = append(b, "level="...)
	b = appendString(b, level.String())
	b = append(b, " msg="...)
	b = appendString(b, msg)
	b = append(b, h.pre...)
	var ok bool
	if b, ok = attrs(b); !ok {
		return false, nil
	}
	b = append(b, '\n')
	_, err = h.out.Write(b)
	return true, err
}

// appendAttr appends " key=value" and reports true, or reports false for
// an attribute this package leaves to slog (b is then unusable).
func appendAttr(b []byte, a slog.Attr) ([]byte, bool) {
	if a.Key == "" || needsQuoting(a.Key) {
		return b, false
	}
	b = append(b, ' ')
	b = append(b, a.Key...)
	b = append(b, '=')
	v := a.Value
	switch v.Kind() {
	case slog.KindString:
		return appendString(b, v.String()), true
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10), true
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10), true
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool()), true
	case slog.KindFloat64:
		return strconv.AppendFloat(b, v.Float64(), 'g', -1, 64), true
	case slog.KindDuration:
		return append(b, v.Duration().String()...), true
	}
	return b, false
}

// appendString appends s, quoted as Go quotes it when it is empty or
// holds a space, '=', '"', a control character or a rune that does not
// print (what slog.TextHandler quotes).
func appendString(b []byte, s string) []byte {
	if !needsQuoting(s) {
		return append(b, s...)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c > '~' || c == '"' || c == '\\' {
			return strconv.AppendQuote(b, s) // escapes to write
		}
	}
	// Printable ASCII quoted for its spaces or '=': Go's quoting is the
	// string between quotes ("normal call clearing (16)").
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// needsQuoting reports whether slog's text format quotes s.
func needsQuoting(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c <= ' ' || c == '=' || c == '"' {
				return true
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += n
	}
	return false
}

// appendTime appends t as slog's text format does: RFC 3339 with
// milliseconds ("2006-01-02T15:04:05.000Z07:00"), the monotonic reading
// dropped.
func appendTime(b []byte, t time.Time) []byte {
	// RFC3339Nano has the time package's fast path but trims trailing
	// zeros: a tenth of a millisecond added keeps four fraction digits,
	// and the fourth is cut.
	const upToMillis = len("2006-01-02T15:04:05.000")
	n := len(b)
	b = t.Round(0).Truncate(time.Millisecond).Add(time.Millisecond/10).AppendFormat(b, time.RFC3339Nano)
	if len(b) <= n+upToMillis {
		return b // not a time RFC 3339 can hold (slog writes it the same way)
	}
	return append(b[:n+upToMillis], b[n+upToMillis+1:]...)
}
