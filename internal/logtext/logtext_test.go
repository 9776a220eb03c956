package logtext

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"
)

// both logs the same records through a Handler and through
// slog.TextHandler, each into its own buffer.
type both struct {
	fast, std *bytes.Buffer
	lf, ls    *slog.Logger
	line      bool // records go to the Handler through Line, not Handle
}

func newBoth(t testing.TB, level slog.Level) *both {
	t.Helper()
	b := &both{fast: &bytes.Buffer{}, std: &bytes.Buffer{}}
	h, err := New(b.fast, &slog.HandlerOptions{Level: level})
	if err != nil {
		t.Fatal(err)
	}
	b.lf = slog.New(h)
	b.ls = slog.New(slog.NewTextHandler(b.std, &slog.HandlerOptions{Level: level}))
	return b
}

func (b *both) with(args ...any) *both {
	return &both{fast: b.fast, std: b.std, lf: b.lf.With(args...), ls: b.ls.With(args...), line: b.line}
}

func (b *both) same(t testing.TB) {
	t.Helper()
	if b.fast.String() != b.std.String() {
		t.Fatalf("logtext wrote\n%q\nslog.TextHandler wrote\n%q", b.fast.String(), b.std.String())
	}
}

// at logs a record at a fixed time through both.
func (b *both) at(tm time.Time, level slog.Level, msg string, attrs ...slog.Attr) {
	for _, l := range []*slog.Logger{b.lf, b.ls} {
		if !l.Enabled(context.Background(), level) {
			continue
		}
		if h, ok := l.Handler().(*Handler); ok && b.line {
			h.Line(context.Background(), tm, level, msg, attrs...)
			continue
		}
		r := slog.NewRecord(tm, level, msg, 0)
		r.AddAttrs(attrs...)
		l.Handler().Handle(context.Background(), r)
	}
}

var when = time.Date(2026, 12, 7, 9, 53, 34, 535_999_999, time.UTC)

// TestSameAsSlog: the lines a node logs, and records this package leaves
// to slog (errors, times, groups, odd keys), come out octet for octet as
// slog.TextHandler writes them, with and without attributes from With,
// through Handle and through Line.
func TestSameAsSlog(t *testing.T) {
	for _, line := range []bool{false, true} {
		t.Run(map[bool]string{false: "Handle", true: "Line"}[line], func(t *testing.T) { sameAsSlog(t, line) })
	}
}

func sameAsSlog(t *testing.T, line bool) {
	b := newBoth(t, slog.LevelInfo)
	b.line = line
	n := b.with("node", "alpha")
	n.at(when, slog.LevelInfo, "call",
		slog.String("event", "released"), slog.String("peer", "beta"), slog.String("service", "echo"),
		slog.String("vc", "vc#44912"), slog.String("dir", "out"), slog.String("cause", "normal call clearing (16)"),
		slog.String("status", "NDIS_STATUS_SUCCESS"), slog.String("by", "this node"))
	n.at(when, slog.LevelInfo, "call", slog.String("event", "connected"), slog.Duration("setup", 1234567*time.Nanosecond))
	n.at(when, slog.LevelWarn, "link down", slog.Bool("dialled", true), slog.Int("n", -3), slog.Uint64("u", math.MaxUint64),
		slog.Float64("f", 0.1), slog.Float64("inf", math.Inf(-1)))
	n.at(when.In(time.FixedZone("x", 5*3600+1800)), slog.LevelError+2, "zone and level offset")
	n.at(time.Time{}, slog.LevelInfo, "no time")
	n.at(when, slog.LevelDebug, "below the level: neither writes it")
	// Left to slog.
	n.at(when, slog.LevelInfo, "an error", slog.Any("err", errors.New("endpoint closed")))
	n.at(when, slog.LevelInfo, "a time", slog.Time("t", when))
	n.at(when, slog.LevelInfo, "a group", slog.Group("g", slog.String("a", "b")))
	n.at(when, slog.LevelInfo, "odd keys", slog.String("a b", "c"), slog.String("", "empty key"))
	n.at(when, slog.LevelInfo, "empty attr", slog.Attr{})
	n.with("err", errors.New("x")).at(when, slog.LevelInfo, "With an error")
	g := &both{fast: b.fast, std: b.std, lf: slog.New(n.lf.Handler().WithGroup("grp")), ls: slog.New(n.ls.Handler().WithGroup("grp")), line: line}
	g.at(when, slog.LevelInfo, "in a group", slog.String("k", "v"))
	b.same(t)
	if lines := strings.Count(b.fast.String(), "\n"); lines != 12 {
		t.Errorf("%d lines, want 12", lines)
	}
}

// TestFastPathAllocatesNothing: a call line costs no allocation in the
// handler (slog.TextHandler's state and buffer were most of its cost).
func TestFastPathAllocatesNothing(t *testing.T) {
	h, err := New(discard{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := slog.NewRecord(when, slog.LevelInfo, "call", 0)
	r.AddAttrs(slog.String("event", "connected"), slog.String("peer", "beta"), slog.String("vc", "vc#3"), slog.Duration("setup", time.Millisecond))
	if n := testing.AllocsPerRun(100, func() { h.Handle(context.Background(), r) }); n != 0 {
		t.Errorf("%v allocations per line, want 0", n)
	}
}

// TestLineAllocatesNothing: a call line of eight attributes, more than a
// slog.Record holds without allocating, costs no allocation through Line.
func TestLineAllocatesNothing(t *testing.T) {
	h, err := New(discard{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	attrs := []slog.Attr{slog.String("event", "released"), slog.String("peer", "beta"), slog.String("service", "echo"),
		slog.String("vc", "vc#44912"), slog.String("dir", "out"), slog.String("cause", "normal call clearing (16)"),
		slog.String("status", "NDIS_STATUS_SUCCESS"), slog.String("by", "this node")}
	if n := testing.AllocsPerRun(100, func() { h.Line(context.Background(), when, slog.LevelInfo, "call", attrs...) }); n != 0 {
		t.Errorf("%v allocations per line, want 0", n)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestNewRefusesWhatItCannotDo: AddSource and ReplaceAttr are refused.
func TestNewRefusesWhatItCannotDo(t *testing.T) {
	for _, o := range []*slog.HandlerOptions{{AddSource: true}, {ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return a }}} {
		if _, err := New(discard{}, o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
}

// FuzzSameAsSlog: any message, string value, number and time come out as
// slog.TextHandler writes them.
func FuzzSameAsSlog(f *testing.F) {
	f.Add("call", "normal call clearing (16)", int64(5), 0.5, int64(1_796_637_278_940_000_000), int64(3))
	f.Add("", "a=b", int64(-1), math.NaN(), int64(0), int64(-7))
	f.Add("é\u00a0\x7f\\", "\"q\"\n\t", int64(math.MinInt64), 1e300, int64(math.MaxInt64), int64(1))
	f.Fuzz(func(t *testing.T, msg, s string, i int64, x float64, unixNano, d int64) {
		b := newBoth(t, slog.LevelDebug)
		tm := time.Unix(0, unixNano).UTC()
		b.with("node", s).at(tm, slog.LevelInfo, msg, slog.String("s", s), slog.Int64("i", i), slog.Float64("x", x),
			slog.Duration("d", time.Duration(d)), slog.Bool("b", i%2 == 0), slog.String(s, msg))
		b.same(t)
	})
}

// BenchmarkCallLine: one call line, this package against slog.TextHandler,
// and through Line (no slog.Record).
func BenchmarkCallLine(b *testing.B) {
	fast, _ := New(discard{}, nil)
	for _, h := range []struct {
		name string
		h    slog.Handler
	}{{"logtext", fast}, {"slog", slog.NewTextHandler(discard{}, nil)}} {
		b.Run(h.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := slog.NewRecord(when, slog.LevelInfo, "call", 0)
				r.AddAttrs(slog.String("event", "released"), slog.String("peer", "beta"), slog.String("service", "echo"),
					slog.String("vc", "vc#44912"), slog.String("dir", "out"), slog.String("cause", "normal call clearing (16)"),
					slog.String("status", "NDIS_STATUS_SUCCESS"), slog.String("by", "this node"))
				h.h.Handle(context.Background(), r)
			}
		})
	}
	b.Run("logtext-Line", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			fast.Line(context.Background(), when, slog.LevelInfo, "call", slog.String("event", "released"), slog.String("peer", "beta"),
				slog.String("service", "echo"), slog.String("vc", "vc#44912"), slog.String("dir", "out"),
				slog.String("cause", "normal call clearing (16)"), slog.String("status", "NDIS_STATUS_SUCCESS"), slog.String("by", "this node"))
		}
	})
}
