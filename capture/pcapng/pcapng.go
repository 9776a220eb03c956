// Package pcapng writes capture files in the pcapng format (the IETF
// draft "PCAP Now Generic", the format Wireshark saves by default): a
// section header, interface descriptions and enhanced packet blocks, with
// the comments and flags Wireshark shows beside each packet. It also
// builds the link-layer header of Wireshark's exported-PDU link type
// ([UpperPDU], LinkTypeUpperPDU), which names the dissector for the packet,
// so that a stock Wireshark decodes the packets with no preference set.
//
// It imports nothing of condis: package capture writes a node's Q.2931
// messages with it, and the codec's tests (package uni) write theirs.
//
// The blocks are written in the byte order of the machine that reads them
// most: little endian. Readers detect the order from the section header.
package pcapng

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"time"
)

// Link types (the LINKTYPE_ registry of tcpdump.org) this package is used
// with.
const (
	// LinkTypeUser0 is LINKTYPE_USER0 (DLT_USER0): private use. Wireshark
	// decodes it only when its "user_dlts" table maps it to a dissector
	// (docs/protocol.md §8 has the recipe for q2931).
	LinkTypeUser0 = 147
	// LinkTypeUpperPDU is LINKTYPE_WIRESHARK_UPPER_PDU: each packet starts
	// with tags ([UpperPDU]) naming the dissector for the rest.
	LinkTypeUpperPDU = 252
)

// Block types and option codes of the pcapng format.
const (
	blockSHB = 0x0A0D0D0A
	blockIDB = 0x00000001
	blockEPB = 0x00000006

	byteOrderMagic = 0x1A2B3C4D

	optEndOfOpt  = 0
	optComment   = 1
	optSHBUserAp = 4
	optIfName    = 2
	optIfDescr   = 3
	optIfTsresol = 9
	optEPBFlags  = 2
)

// maxBlock is the largest block this package writes: a packet larger than
// that is refused, not truncated.
const maxBlock = 1 << 24

var le = binary.LittleEndian

// Interface describes one capture interface: the link type of its packets
// and, for people, a name and a description.
type Interface struct {
	LinkType    uint16
	Name        string // if_name, e.g. "condis:alpha"
	Description string // if_description
}

// Direction is the direction of a packet, as the epb_flags option records
// it (Wireshark shows it as "Direction: Inbound/Outbound").
type Direction uint8

// Directions. Unknown records none.
const (
	Unknown Direction = iota
	Inbound
	Outbound
)

// Packet is one packet to write.
type Packet struct {
	Interface int       // index of its interface, in the order they were added
	Time      time.Time // nanosecond resolution is kept
	Data      []byte
	Direction Direction
	Comment   string // opt_comment: shown by Wireshark under "Packet comments"
}

// Writer writes one pcapng section. It is not safe for concurrent use.
// Blocks are buffered: Flush writes them out.
type Writer struct {
	w      *bufio.Writer
	ifaces int
	buf    []byte
}

// NewWriter writes a section header to w, naming app (shb_userappl, e.g.
// "condis") if not empty, and returns a Writer for the section.
func NewWriter(w io.Writer, app string) (*Writer, error) {
	pw := &Writer{w: bufio.NewWriter(w)}
	b := pw.start(blockSHB)
	b = le.AppendUint32(b, byteOrderMagic)
	b = le.AppendUint16(b, 1) // version 1.0
	b = le.AppendUint16(b, 0)
	b = le.AppendUint64(b, math.MaxUint64) // section length: not given
	if app != "" {
		b = appendOption(b, optSHBUserAp, []byte(app))
		b = appendOption(b, optEndOfOpt, nil)
	}
	return pw, pw.finish(b)
}

// AddInterface writes an interface description block and returns the
// interface's index, for Packet.Interface. Timestamps are in nanoseconds.
func (pw *Writer) AddInterface(i Interface) (int, error) {
	b := pw.start(blockIDB)
	b = le.AppendUint16(b, i.LinkType)
	b = le.AppendUint16(b, 0) // reserved
	b = le.AppendUint32(b, 0) // snaplen: no limit
	if i.Name != "" {
		b = appendOption(b, optIfName, []byte(i.Name))
	}
	if i.Description != "" {
		b = appendOption(b, optIfDescr, []byte(i.Description))
	}
	b = appendOption(b, optIfTsresol, []byte{9}) // 10^-9 s
	b = appendOption(b, optEndOfOpt, nil)
	if err := pw.finish(b); err != nil {
		return 0, err
	}
	pw.ifaces++
	return pw.ifaces - 1, nil
}

// WritePacket writes an enhanced packet block.
func (pw *Writer) WritePacket(p Packet) error {
	if p.Interface < 0 || p.Interface >= pw.ifaces {
		return fmt.Errorf("pcapng: interface %d not added", p.Interface)
	}
	if len(p.Data)+len(p.Comment) > maxBlock {
		return fmt.Errorf("pcapng: packet of %d octets with a comment of %d, more than %d", len(p.Data), len(p.Comment), maxBlock)
	}
	ts := uint64(p.Time.UnixNano())
	if p.Time.IsZero() || p.Time.Before(time.Unix(0, 0)) {
		ts = 0
	}
	b := pw.start(blockEPB)
	b = le.AppendUint32(b, uint32(p.Interface))
	b = le.AppendUint32(b, uint32(ts>>32))
	b = le.AppendUint32(b, uint32(ts))
	b = le.AppendUint32(b, uint32(len(p.Data))) // captured
	b = le.AppendUint32(b, uint32(len(p.Data))) // original
	b = append(b, p.Data...)
	b = pad(b)
	opts := false
	if p.Comment != "" {
		b = appendOption(b, optComment, []byte(p.Comment))
		opts = true
	}
	if p.Direction != Unknown {
		b = appendOption(b, optEPBFlags, le.AppendUint32(nil, uint32(p.Direction)))
		opts = true
	}
	if opts {
		b = appendOption(b, optEndOfOpt, nil)
	}
	return pw.finish(b)
}

// Flush writes the buffered blocks to the underlying writer.
func (pw *Writer) Flush() error { return pw.w.Flush() }

// start begins a block of type t in pw's buffer, its length left to finish.
func (pw *Writer) start(t uint32) []byte {
	b := le.AppendUint32(pw.buf[:0], t)
	return le.AppendUint32(b, 0)
}

// finish fills in the block's length, at both ends, and buffers it.
func (pw *Writer) finish(b []byte) error {
	n := uint32(len(b) + 4)
	le.PutUint32(b[4:], n)
	b = le.AppendUint32(b, n)
	pw.buf = b[:0]
	_, err := pw.w.Write(b)
	return err
}

// appendOption appends one option (code, length, value padded to 32 bits).
func appendOption(b []byte, code uint16, v []byte) []byte {
	b = le.AppendUint16(b, code)
	b = le.AppendUint16(b, uint16(len(v)))
	return pad(append(b, v...))
}

// pad pads b with zeros to a multiple of 4 octets.
func pad(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// Exported-PDU tags (Wireshark's wsutil/exported_pdu_tlvs.h). Each is a
// big-endian type and length, then the value.
const (
	tagEndOfOpt      = 0
	tagDissectorName = 12 // EXP_PDU_TAG_DISSECTOR_NAME (formerly PROTO_NAME)
	tagIPv4Src       = 20
	tagIPv4Dst       = 21
	tagIPv6Src       = 22
	tagIPv6Dst       = 23
	tagPortType      = 24
	tagSrcPort       = 25
	tagDstPort       = 26
	tagP2PDirection  = 35 // EXP_PDU_TAG_P2P_DIRECTION

	portTypeUDP = 3 // EXP_PDU_PT_UDP

	p2pSent = 0 // P2P_DIR_SENT
	p2pRecv = 1 // P2P_DIR_RECV
)

// UpperPDU is the link-layer header of a LinkTypeUpperPDU packet: the
// dissector Wireshark hands the rest of the packet to, and the addresses
// it shows as the packet's source and destination.
type UpperPDU struct {
	// Dissector is the name a Wireshark dissector is registered under,
	// such as "q2931" (EXP_PDU_TAG_DISSECTOR_NAME).
	Dissector string
	// Src and Dst are the packet's endpoints. Both are tagged if both are
	// valid and of the same family; their ports are tagged as UDP ports
	// if both are non-zero.
	Src, Dst netip.AddrPort
	// Direction, if not Unknown, is tagged as the packet's peer-to-peer
	// direction (EXP_PDU_TAG_P2P_DIRECTION): Outbound is "sent".
	Direction Direction
}

// errDissectorName is returned for a dissector name a tag cannot carry.
var errDissectorName = errors.New("pcapng: exported PDU: the dissector name must be 1 to 255 octets")

// Append appends the tags, then pdu, to b: one packet's data.
func (u UpperPDU) Append(b []byte, pdu []byte) ([]byte, error) {
	if u.Dissector == "" || len(u.Dissector) > 255 {
		return b, errDissectorName
	}
	// Wireshark pads a string with NULs to 32 bits and counts them in
	// the length; readers drop them.
	name := pad([]byte(u.Dissector))
	b = appendTag(b, tagDissectorName, name)
	src, dst := u.Src.Addr().Unmap(), u.Dst.Addr().Unmap()
	switch {
	case src.Is4() && dst.Is4():
		b = appendTag(b, tagIPv4Src, src.AsSlice())
		b = appendTag(b, tagIPv4Dst, dst.AsSlice())
	case src.Is6() && dst.Is6():
		b = appendTag(b, tagIPv6Src, src.AsSlice())
		b = appendTag(b, tagIPv6Dst, dst.AsSlice())
	}
	if src.IsValid() && dst.IsValid() && src.Is4() == dst.Is4() && u.Src.Port() != 0 && u.Dst.Port() != 0 {
		b = appendTag(b, tagPortType, binary.BigEndian.AppendUint32(nil, portTypeUDP))
		b = appendTag(b, tagSrcPort, binary.BigEndian.AppendUint32(nil, uint32(u.Src.Port())))
		b = appendTag(b, tagDstPort, binary.BigEndian.AppendUint32(nil, uint32(u.Dst.Port())))
	}
	switch u.Direction {
	case Outbound:
		b = appendTag(b, tagP2PDirection, binary.BigEndian.AppendUint32(nil, p2pSent))
	case Inbound:
		b = appendTag(b, tagP2PDirection, binary.BigEndian.AppendUint32(nil, p2pRecv))
	}
	b = appendTag(b, tagEndOfOpt, nil)
	return append(b, pdu...), nil
}

// appendTag appends one exported-PDU tag; the length is v's.
func appendTag(b []byte, tag uint16, v []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, tag)
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}
