package ipvc

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/tun"
)

// linuxTUN is the Linux TUN device (golang.zx2c4.com/wireguard/tun, with
// its segmentation offloads), configured over netlink.
type linuxTUN struct {
	tun.Device
	link netlink.Link
}

// Open creates the TUN interface cfg names, gives it cfg's address and MTU
// (MinMTU if none), brings it up and routes every prefix of cfg's routes
// to it. Errors are one line saying what is wrong and what to do: no
// /dev/net/tun, no CAP_NET_ADMIN, an address another interface has.
// Closing the device removes the interface, with its address and routes.
func Open(cfg Config) (Device, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	name := cfg.device()
	if err := checkOverlap(name, cfg.Address); err != nil {
		return nil, err
	}
	mtu := cfg.MTU
	if mtu == 0 {
		mtu = MinMTU
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return nil, fmt.Errorf("ip: no /dev/net/tun (%v): load the tun module (modprobe tun), or give a container the device (--device /dev/net/tun)", errors.Unwrap(err))
	}
	dev, err := tun.CreateTUN(name, mtu)
	if err != nil {
		switch {
		case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
			return nil, fmt.Errorf("ip: creating the TUN interface %s needs CAP_NET_ADMIN: run the node as root, or setcap cap_net_admin+ep on its binary", name)
		case errors.Is(err, syscall.EBUSY):
			return nil, fmt.Errorf("ip: the TUN interface %s is in use (another node?): set [ip] device to another name", name)
		}
		return nil, fmt.Errorf("ip: creating the TUN interface %s: %v", name, err)
	}
	t := &linuxTUN{Device: dev}
	if err := t.setup(cfg, mtu); err != nil {
		dev.Close()
		return nil, fmt.Errorf("ip: configuring %s: %w", name, err)
	}
	return t, nil
}

func (t *linuxTUN) setup(cfg Config, mtu int) error {
	name, err := t.Device.Name()
	if err != nil {
		return err
	}
	if t.link, err = netlink.LinkByName(name); err != nil {
		return err
	}
	if err := netlink.LinkSetMTU(t.link, mtu); err != nil {
		return fmt.Errorf("MTU %d: %w", mtu, err)
	}
	addr := &netlink.Addr{IPNet: prefixNet(cfg.Address)}
	if err := netlink.AddrAdd(t.link, addr); err != nil {
		return fmt.Errorf("address %v: %w", cfg.Address, err)
	}
	if err := netlink.LinkSetUp(t.link); err != nil {
		return fmt.Errorf("bringing it up: %w", err)
	}
	for _, r := range cfg.Routes {
		for _, p := range r.Prefixes {
			rt := &netlink.Route{LinkIndex: t.link.Attrs().Index, Dst: prefixNet(p), Scope: netlink.SCOPE_LINK}
			if err := netlink.RouteReplace(rt); err != nil {
				return fmt.Errorf("route %v (to node %s): %w", p, r.Node, err)
			}
		}
	}
	return nil
}

// SetMTU sets the interface's MTU.
func (t *linuxTUN) SetMTU(mtu int) error { return netlink.LinkSetMTU(t.link, mtu) }

// checkOverlap refuses an address whose network another interface's
// address overlaps: packets for it would not reliably reach the TUN.
func checkOverlap(device string, a netip.Prefix) error {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("ip: listing the host's addresses: %v", err)
	}
	for _, x := range addrs {
		p, ok := netipPrefix(x.IPNet)
		if !ok || p.Addr().Is4() != a.Addr().Is4() || p.Addr().IsLinkLocalUnicast() {
			continue
		}
		if p.Overlaps(a) {
			link := fmt.Sprint(x.LinkIndex)
			if l, err := netlink.LinkByIndex(x.LinkIndex); err == nil {
				link = l.Attrs().Name
			}
			if link == device {
				continue // our own, left by a node that died: the device is replaced
			}
			return fmt.Errorf("ip: address %v overlaps %v on interface %s: give condis's interface a network of its own", a, p, link)
		}
	}
	return nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func netipPrefix(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}
