package ndis

import (
	"testing"
	"unsafe"
)

// vcSizeMax is the largest a Vc may be and still fit the 288-octet size
// class (TestCallGarbage in vcsize_test.go measures what a call allocates).
const vcSizeMax = 288

// TestVcSize fails if Vc grows out of its size class: a node holds one per
// held call, so every field added to it costs that class's step (32
// octets) per held VC once the struct crosses the boundary. Rarely used
// fields belong in vcMore or in the mediator.
func TestVcSize(t *testing.T) {
	if s := unsafe.Sizeof(Vc{}); s > vcSizeMax {
		t.Errorf("unsafe.Sizeof(Vc{}) = %d octets; it must stay within the %d-octet size class: move rarely used fields to vcMore", s, vcSizeMax)
	}
	if s := unsafe.Sizeof(vcMore{}); s > 96 {
		t.Errorf("unsafe.Sizeof(vcMore{}) = %d octets; want at most 96 (its size class)", s)
	}
}
