package ipvc

import (
	"encoding/binary"
	"net/netip"
)

// addrs returns the source and destination addresses of an IPv4 or IPv6
// packet; ok is false if pkt is neither.
func addrs(pkt []byte) (src, dst netip.Addr, ok bool) {
	if len(pkt) < 1 {
		return
	}
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < 20 {
			return
		}
		return netip.AddrFrom4([4]byte(pkt[12:16])), netip.AddrFrom4([4]byte(pkt[16:20])), true
	case 6:
		if len(pkt) < 40 {
			return
		}
		return netip.AddrFrom16([16]byte(pkt[8:24])), netip.AddrFrom16([16]byte(pkt[24:40])), true
	}
	return
}

// Unreachable is what an ICMP destination unreachable says went wrong.
type Unreachable uint8

// Reasons for ICMP destination unreachable.
const (
	// Prohibited: the destination node refused the call (cause 21, call
	// rejected: its trust, allow list or [ip] routes do not admit this
	// node; cause 88: it offers no "ip" service). ICMPv4 type 3 code 13
	// (communication administratively prohibited), ICMPv6 type 1 code 1.
	Prohibited Unreachable = iota + 1
	// HostUnreachable: the call failed for any other reason (the node is
	// out of order or unreachable, timers ran out, resources). ICMPv4
	// type 3 code 1, ICMPv6 type 1 code 3 (address unreachable).
	HostUnreachable
	// TooBig: the packet is larger than the VC carries. ICMPv4 type 3
	// code 4 (fragmentation needed, with the MTU; only for packets with
	// DF set, others are dropped), ICMPv6 type 2 (packet too big).
	TooBig
)

// icmpError builds the ICMP error about pkt, or nil if none may be sent
// (RFC 1812 §4.3.2.7, RFC 4443 §2.4(e)): pkt is not a first fragment, is
// itself an ICMP error, or has a source that is not a unicast host. It
// comes from pkt's destination, the address that cannot be reached: one of
// this host's own addresses as the source of a packet arriving on an
// interface is a martian, and the kernel drops it. mtu is TooBig's.
func icmpError(pkt []byte, why Unreachable, mtu int) []byte {
	src, dst, ok := addrs(pkt)
	if !ok || !src.IsValid() || src.IsUnspecified() || src.IsMulticast() || src.IsLoopback() || dst.IsMulticast() {
		return nil
	}
	if pkt[0]>>4 == 4 {
		return icmp4Error(dst, src, pkt, why, mtu)
	}
	return icmp6Error(dst, src, pkt, why, mtu)
}

func icmp4Error(self, to netip.Addr, pkt []byte, why Unreachable, mtu int) []byte {
	ihl := int(pkt[0]&0x0f) * 4
	if ihl < 20 || len(pkt) < ihl {
		return nil
	}
	if binary.BigEndian.Uint16(pkt[6:8])&0x1fff != 0 {
		return nil // not the first fragment
	}
	if pkt[9] == 1 && len(pkt) > ihl && !icmp4Informational(pkt[ihl]) {
		return nil // an ICMP error, or too short to tell
	}
	df := pkt[6]&0x40 != 0
	var code byte
	switch why {
	case Prohibited:
		code = 13
	case HostUnreachable:
		code = 1
	case TooBig:
		if !df {
			return nil
		}
		code = 4
	}
	// The original IP header and 8 octets of its payload (RFC 792); more
	// is allowed (RFC 1812: up to 576 in all), and helps.
	quote := pkt[:min(len(pkt), 576-20-8)]
	b := make([]byte, 20+8+len(quote))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[8] = 64 // TTL
	b[9] = 1  // ICMP
	s4, t4 := self.As4(), to.As4()
	copy(b[12:16], s4[:])
	copy(b[16:20], t4[:])
	binary.BigEndian.PutUint16(b[10:], checksum(b[:20], 0))
	m := b[20:]
	m[0], m[1] = 3, code
	if why == TooBig {
		binary.BigEndian.PutUint16(m[6:], uint16(mtu))
	}
	copy(m[8:], quote)
	binary.BigEndian.PutUint16(m[2:], checksum(m, 0))
	return b
}

// icmp4Informational: echo request and reply, and the other queries, are
// not errors.
func icmp4Informational(t byte) bool {
	switch t {
	case 0, 8, 9, 10, 13, 14, 15, 16, 17, 18:
		return true
	}
	return false
}

func icmp6Error(self, to netip.Addr, pkt []byte, why Unreachable, mtu int) []byte {
	if pkt[6] == 58 && len(pkt) > 40 && pkt[40] < 128 {
		return nil // an ICMPv6 error (types below 128)
	}
	var typ, code byte
	switch why {
	case Prohibited:
		typ, code = 1, 1
	case HostUnreachable:
		typ, code = 1, 3
	case TooBig:
		typ = 2
	}
	// As much of the packet as fits in the minimum MTU (RFC 4443 §2.4(c)).
	quote := pkt[:min(len(pkt), 1280-40-8)]
	b := make([]byte, 40+8+len(quote))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(8+len(quote)))
	b[6] = 58 // ICMPv6
	b[7] = 64 // hop limit
	s16, t16 := self.As16(), to.As16()
	copy(b[8:24], s16[:])
	copy(b[24:40], t16[:])
	m := b[40:]
	m[0], m[1] = typ, code
	if why == TooBig {
		binary.BigEndian.PutUint32(m[4:], uint32(mtu))
	}
	copy(m[8:], quote)
	// The pseudo-header: addresses, upper-layer length, next header.
	var sum uint32
	sum = sum16(b[8:40], sum)
	sum += uint32(len(m)) + 58
	binary.BigEndian.PutUint16(m[2:], checksum(m, sum))
	return b
}

// sum16 adds b to sum as 16-bit words (one's complement sum, not folded).
func sum16(b []byte, sum uint32) uint32 {
	for len(b) >= 2 {
		sum += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

// checksum is the Internet checksum of b, starting from sum.
func checksum(b []byte, sum uint32) uint16 {
	sum = sum16(b, sum)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
