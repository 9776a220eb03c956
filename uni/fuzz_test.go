package uni

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/fuzz/FuzzDecode from the test fixtures")

// FuzzDecode: Decode never panics; whatever it accepts encodes, and the
// encoding decodes to the same value and re-encodes to the same octets.
func FuzzDecode(f *testing.F) {
	for _, s := range seedMessages(f) {
		f.Add(s.wire)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || m != nil {
				t.Fatalf("Decode(%x) = %v, %v: want nil and a *DecodeError", b, m, err)
			}
			if de.Cause == 0 || de.Action == 0 {
				t.Fatalf("DecodeError without cause or action: %v", de)
			}
			return
		}
		enc, err := m.Encode()
		if err != nil {
			t.Fatalf("decoded message does not encode: %v\ninput %x\nmessage %+v", err, b, *m)
		}
		m2, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-encoding does not decode: %v\ninput %x\nencoding %x", err, b, enc)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("decode(encode(decode(b))) != decode(b)\ninput %x\nencoding %x\nfirst  %+v\nsecond %+v", b, enc, *m, *m2)
		}
		enc2, err := m2.Encode()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("canonical encoding not stable: %x vs %x (%v)", enc, enc2, err)
		}
	})
}

type seed struct {
	file string
	wire []byte
}

// seedMessages are the encodings of every test fixture plus the golden
// messages: the committed corpus under testdata/fuzz/FuzzDecode.
func seedMessages(tb testing.TB) []seed {
	var out []seed
	add := func(name string, m *Message) {
		b, err := m.Encode()
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		file := "seed-" + strings.ToLower(strings.NewReplacer(" ", "-", "/", "-").Replace(name))
		out = append(out, seed{file: file, wire: b})
	}
	for _, f := range append(fixtures(), extraFixtures()...) {
		add(f.name, f.m)
	}
	add("golden SETUP", goldenSetupMessage())
	add("golden RELEASE COMPLETE", goldenReleaseCompleteMessage())
	return out
}

func corpusFile(b []byte) string {
	return "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
}

// TestFuzzSeedCorpus keeps the committed seed corpus equal to the current
// fixture encodings; run with -update-seeds to rewrite it.
func TestFuzzSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	for _, s := range seedMessages(t) {
		path := filepath.Join(dir, s.file)
		want := corpusFile(s.wire)
		if *updateSeeds {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("seed corpus file missing (run go test -run TestFuzzSeedCorpus -update-seeds ./uni): %v", err)
		}
		if string(got) != want {
			t.Errorf("%s is stale: %s\nwant %s(run go test -run TestFuzzSeedCorpus -update-seeds ./uni)", path, got, want)
		}
	}
	if *updateSeeds {
		fmt.Fprintln(os.Stderr, "rewrote", dir)
	}
}
