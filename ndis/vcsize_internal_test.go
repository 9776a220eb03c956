package ndis

import (
	"testing"
	"unsafe"
)

// vcSizeMax is the largest a Vc may be and still fit the 144-octet size
// class (TestCallGarbage in vcsize_test.go measures what a call allocates).
const vcSizeMax = 144

// TestVcSize fails if Vc grows out of its size class: a node holds one per
// held call, so every field added to it costs that class's step (32
// octets) per held VC once the struct crosses the boundary. Rarely used
// fields belong in vcMore or in the mediator.
func TestVcSize(t *testing.T) {
	if s := unsafe.Sizeof(Vc{}); s > vcSizeMax {
		t.Errorf("unsafe.Sizeof(Vc{}) = %d octets; it must stay within the %d-octet size class: move rarely used fields to vcMore", s, vcSizeMax)
	}
	if s := unsafe.Sizeof(activationParams{}); s > 160 {
		t.Errorf("unsafe.Sizeof(activationParams{}) = %d octets; want at most 160 (its size class, paramsSizeClass in vcsize_test.go)", s)
	}
	if s := unsafe.Sizeof(vcMore{}); s > 96 {
		t.Errorf("unsafe.Sizeof(vcMore{}) = %d octets; want at most 96 (its size class)", s)
	}
}

// nameSink keeps a name alive, as a caller that stores it in an event does.
var nameSink string

// TestNameOneAllocation checks that a handle's name is right and costs one
// allocation (the string), not two (a formatted number and the
// concatenation): call tracers ask for it on every call event.
func TestNameOneAllocation(t *testing.T) {
	v := &Vc{id: 1234567}
	if got := v.String(); got != "vc#1234567" {
		t.Fatalf("String() = %q; want vc#1234567", got)
	}
	if got := (&Party{id: 18446744073709551615}).String(); got != "party#18446744073709551615" {
		t.Fatalf("String() = %q; want party#18446744073709551615", got)
	}
	if n := testing.AllocsPerRun(100, func() { nameSink = v.String() }); n != 1 {
		t.Errorf("Vc.String allocates %v times; want 1", n)
	}
}

// TestAppendName: AppendName writes String's name into the caller's
// storage, without an allocation when it fits (clientcore keeps every VC's
// name so).
func TestAppendName(t *testing.T) {
	v := &Vc{id: 18446744073709551615}
	var room [len("vc#18446744073709551615")]byte
	if got := string(v.AppendName(room[:0])); got != v.String() {
		t.Fatalf("AppendName = %q; want %q", got, v.String())
	}
	if got := string(v.AppendName([]byte("x "))); got != "x vc#18446744073709551615" {
		t.Fatalf("AppendName after x = %q", got)
	}
	if n := testing.AllocsPerRun(100, func() { _ = v.AppendName(room[:0]) }); n != 0 {
		t.Errorf("AppendName allocates %v times; want 0", n)
	}
}
