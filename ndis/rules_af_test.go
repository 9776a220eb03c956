package ndis_test

// Rule tests for R-AF (address families) and R-SAP (service access points).

import (
	"testing"

	"github.com/condis-project/condis/internal/ndistest"
	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
)

var rlL2TP = ndis.AddressFamily{AddressFamily: ndis.AFL2TP, MajorVersion: 1}

func TestRule_R_AF_2_DuplicateRegistrationRefused(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		other := memdrv.AF
		other.MajorVersion = 4 // versions do not matter: the AF type does (spec §7.7)
		register := func(af ndis.AddressFamily) ndis.Status {
			if x.mp != nil {
				return x.cm.b.CmRegisterAddressFamilyEx(af)
			}
			return x.ad.MCmRegisterAddressFamilyEx(af)
		}
		x.refuse("R-AF-2", ndis.StatusFailure, func() ndis.Status { return register(memdrv.AF) })
		x.refuse("R-AF-2", ndis.StatusFailure, func() ndis.Status { return register(other) })
		if x.mp != nil {
			// A second call manager on the same adapter.
			cm2 := &rlCM{x: x, name: "cm2"}
			x.refuse("R-AF-2", ndis.StatusFailure, func() ndis.Status {
				_, st := x.m.BindAdapter(x.ad, "cm2", cm2, cm2, func(b *ndis.Binding) ndis.Status {
					return b.CmRegisterAddressFamilyEx(memdrv.AF)
				})
				return st
			})
		}
		if n := x.c1.count("AfRegisterNotify"); n != 1 {
			t.Errorf("client notified %d times", n)
		}
		// The registration is intact: a new client opens the AF.
		c3 := x.bindClient("c3")
		rlIs(t, "open", c3.openSt, ndis.StatusSuccess)
		x.Teardown()
	})
}

func TestRule_R_AF_3_RegistrationByNonCallManagerRefused(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		x.refuse("R-AF-3", ndis.StatusFailure, func() ndis.Status { return x.c1.b.CmRegisterAddressFamilyEx(rlL2TP) })
		cm2 := &rlCM{x: x, name: "cm2"}
		b, st := x.m.BindAdapter(x.ad, "cm2", cm2, cm2, nil)
		rlMust(t, st, "bind")
		rlMust(t, b.CloseAdapterEx(), "unbind")
		x.refuse("R-AF-3", ndis.StatusFailure, func() ndis.Status { return b.CmRegisterAddressFamilyEx(rlL2TP) })
		x.Teardown()
	})
}

func TestRule_R_AF_5_RegistrationNotifiesClients(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		const l2tp = "AfRegisterNotify(CO_ADDRESS_FAMILY_L2TP)"
		if x.mp != nil {
			rlMust(t, x.cm.b.CmRegisterAddressFamilyEx(rlL2TP), "register")
		} else {
			rlMust(t, x.ad.MCmRegisterAddressFamilyEx(rlL2TP), "register")
		}
		for _, c := range []*rlClient{x.c1, x.c2} {
			if n := c.count(l2tp); n != 1 {
				t.Errorf("%s notified %d times of the new AF", c.name, n)
			}
		}
		if n := x.cm.count("AfRegisterNotify"); n != 0 {
			t.Errorf("the call manager was notified of its own AF")
		}
		// A client binding later is told about every AF on the adapter, once.
		c3 := x.bindClient("c3")
		if c3.count("AfRegisterNotify") != 2 || c3.count(l2tp) != 1 {
			t.Errorf("late client notifications: %v", c3.all())
		}
		if x.mp != nil {
			// A call manager's registration from its bind function is
			// announced once that function has returned (spec §4.1 step 3).
			cm2 := &rlCM{x: x, name: "cm2"}
			ppp := ndis.AddressFamily{AddressFamily: ndis.AFPPP}
			during := -1
			b, st := x.m.BindAdapter(x.ad, "cm2", cm2, cm2, func(b *ndis.Binding) ndis.Status {
				st := b.CmRegisterAddressFamilyEx(ppp)
				during = x.c1.count("AfRegisterNotify(CO_ADDRESS_FAMILY_PPP)")
				return st
			})
			rlMust(t, st, "bind cm2")
			if during != 0 || x.c1.count("AfRegisterNotify(CO_ADDRESS_FAMILY_PPP)") != 1 {
				t.Errorf("notified %d times during bind, %d after", during, x.c1.count("AfRegisterNotify(CO_ADDRESS_FAMILY_PPP)"))
			}
			rlMust(t, b.CloseAdapterEx(), "unbind cm2")
		}
		x.Teardown()
	})
}

func TestRule_R_AF_6_MCMDisplacesStandAloneCM(t *testing.T) {
	rlOnly(t, ndistest.MCM, func(t *testing.T, x *rlFx) {
		cm2 := &rlCM{x: x, name: "cm2"}
		x.refuse("R-AF-6", ndis.StatusFailure, func() ndis.Status {
			_, st := x.m.BindAdapter(x.ad, "cm2", cm2, cm2, func(b *ndis.Binding) ndis.Status {
				return b.CmRegisterAddressFamilyEx(rlL2TP)
			})
			return st
		})
		// Nor may a protocol bound to the MCM run call management of its
		// own over it: no signalling VC.
		b, st := x.m.BindAdapter(x.ad, "cm2", cm2, cm2, nil)
		rlMust(t, st, "bind")
		x.refuse("R-AF-6", ndis.StatusFailure, func() ndis.Status {
			_, st := b.CoCreateVc(nil, &rlVc{})
			return st
		})
		rlMust(t, b.CloseAdapterEx(), "unbind")
		x.Teardown()
	})
}

func TestRule_R_AF_8_AfUnusableUntilOpenCompletes(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		var h *ndis.Af
		x.cm.openAf = func(af *ndis.Af) (any, ndis.Status) { h = af; return nil, ndis.StatusPending }
		c3 := x.bindClient("c3")
		rlIs(t, "open", c3.openSt, ndis.StatusPending)
		if c3.af != h {
			t.Fatalf("open returned %v, call manager got %v", c3.af, h)
		}
		x.refuse("R-AF-8", ndis.StatusFailure, func() ndis.Status {
			_, st := c3.b.ClRegisterSap(h, &rlSap{}, memdrv.ServiceSap("x"))
			return st
		})
		x.refuse("R-AF-8", ndis.StatusFailure, func() ndis.Status {
			_, st := c3.b.CoCreateVc(h, &rlVc{})
			return st
		})
		x.refuse("R-AF-8", ndis.StatusFailure, func() ndis.Status { return c3.b.ClCloseAddressFamily(h) })
		x.refuse("R-AF-8", ndis.StatusFailure, func() ndis.Status {
			return c3.b.CoOidRequest(h, nil, nil, &ndis.OidRequest{})
		})
		rlMust(t, x.cm.openAfComplete(ndis.StatusSuccess, h, &rlAf{h: h}), "complete")
		s := x.sap(c3, "svc")
		x.unsap(c3, s)
		x.Teardown()
	})
}

func TestRule_R_AF_9_OpenRefused(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		// AF not registered on the adapter.
		x.refuse("R-AF-9", ndis.StatusFailure, func() ndis.Status {
			_, st := x.c1.b.ClOpenAddressFamilyEx(rlL2TP, nil)
			return st
		})
		// The client's binding is closed.
		c3 := x.bindClient("c3", func(c *rlClient) { c.autoOpen = false })
		rlMust(t, c3.b.CloseAdapterEx(), "unbind")
		x.refuse("R-AF-9", ndis.StatusFailure, func() ndis.Status {
			_, st := c3.b.ClOpenAddressFamilyEx(memdrv.AF, nil)
			return st
		})
		// The call manager is withdrawing the AF.
		rlMust(t, x.cm.notifyCloseAf(x.c2.af), "notify")
		x.refuse("R-AF-9", ndis.StatusFailure, func() ndis.Status {
			_, st := x.c1.b.ClOpenAddressFamilyEx(memdrv.AF, nil)
			return st
		})
		x.Teardown()
	})
}

func TestRule_R_AF_10_FailedOpenFreesTheAf(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		regOpens := func() int { return x.m.Snapshot().Adapters[0].Registrations[0].Opens }
		before := regOpens()
		// Synchronous failure.
		x.cm.openAf = func(*ndis.Af) (any, ndis.Status) { return nil, ndis.StatusResources }
		c3 := x.bindClient("c3")
		rlIs(t, "open", c3.openSt, ndis.StatusResources)
		if c3.af != nil || regOpens() != before {
			t.Errorf("failed open left state: handle %v\n%s", c3.af, x.snap())
		}
		// Failure through the completion.
		var h *ndis.Af
		x.cm.openAf = func(af *ndis.Af) (any, ndis.Status) { h = af; return nil, ndis.StatusPending }
		c4 := x.bindClient("c4")
		rlIs(t, "open", c4.openSt, ndis.StatusPending)
		rlMust(t, x.cm.openAfComplete(ndis.StatusResources, h, nil), "complete")
		if c4.last("OpenAfComplete") != "OpenAfComplete(NDIS_STATUS_RESOURCES,nil=true)" || regOpens() != before {
			t.Errorf("completion %q\n%s", c4.last("OpenAfComplete"), x.snap())
		}
		x.refuse("R-AF-10", ndis.StatusFailure, func() ndis.Status { return c4.b.ClCloseAddressFamily(h) })
		x.refuse("R-GEN-2", ndis.StatusFailure, func() ndis.Status { return x.cm.openAfComplete(ndis.StatusSuccess, h, nil) })
		x.refuse("R-VC-4", ndis.StatusFailure, func() ndis.Status {
			_, _, st := x.cm.createVcOn(h)
			return st
		})
		x.Teardown()
	})
}

// On success the call manager's AF context (returned, or given to the
// completion) is what its later handlers for that open receive.
func TestRule_R_AF_11_CallManagerAfContextPassedOn(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		var h *ndis.Af
		x.cm.openAf = func(af *ndis.Af) (any, ndis.Status) {
			h = af
			return &rlAf{}, ndis.StatusPending // ignored: the open pends
		}
		c3 := x.bindClient("c3")
		rlMust(t, x.cm.openAfComplete(ndis.StatusSuccess, h, &rlAf{h: h}), "complete")
		s := x.sap(c3, "svc")
		vc := x.newVc(c3)
		rlMust(t, c3.b.CoDeleteVc(vc), "delete")
		x.unsap(c3, s)
		rlMust(t, c3.b.ClCloseAddressFamily(h), "close")
		for _, want := range []string{"RegisterSap(" + h.String() + ",svc)", "CoCreateVc(" + h.String() + ",", "CloseAf(" + h.String() + ")"} {
			if x.cm.count(want) != 1 {
				t.Errorf("call manager handler did not get its AF context: no %q in %v", want, x.cm.all())
			}
		}
		x.Teardown()
	})
}

func TestRule_R_AF_12_CloseAfWithObjectsRefused(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.newVc(x.c1)
		x.refuse("R-AF-12", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClCloseAddressFamily(x.c1.af) })
		rlMust(t, x.c1.b.CoDeleteVc(vc), "delete")
		s := x.sap(x.c1, "svc")
		x.refuse("R-AF-12", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClCloseAddressFamily(x.c1.af) })
		// A call on a call-manager VC blocks the close too.
		in, _ := x.incoming(x.c1, s)
		x.unsap(x.c1, s)
		x.refuse("R-AF-12", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClCloseAddressFamily(x.c1.af) })
		x.remoteHangup(x.c1, in)
		rlMust(t, x.c1.b.ClCloseAddressFamily(x.c1.af), "close once empty")
		x.Teardown()
	})
}

func TestRule_R_AF_13_SecondCloseRefused(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		x.cm.closeAf = func(any) ndis.Status { return ndis.StatusPending }
		rlIs(t, "close", x.c1.b.ClCloseAddressFamily(x.c1.af), ndis.StatusPending)
		x.refuse("R-AF-13", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClCloseAddressFamily(x.c1.af) })
		rlMust(t, x.cm.closeAfComplete(ndis.StatusSuccess, x.c1.af), "complete")
		x.refuse("R-AF-13", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClCloseAddressFamily(x.c1.af) })
		if n := x.c1.count("CloseAfComplete(NDIS_STATUS_SUCCESS)"); n != 1 {
			t.Errorf("%d close completions", n)
		}
		x.Teardown()
	})
}

func TestRule_R_AF_14_AfHandleDeadOnceClosing(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		dead := func(c *rlClient) {
			t.Helper()
			x.refuse("R-AF-14", ndis.StatusFailure, func() ndis.Status {
				_, st := c.b.ClRegisterSap(c.af, &rlSap{}, memdrv.ServiceSap("x"))
				return st
			})
			x.refuse("R-AF-14", ndis.StatusFailure, func() ndis.Status {
				_, st := c.b.CoCreateVc(c.af, &rlVc{})
				return st
			})
			x.refuse("R-AF-14", ndis.StatusFailure, func() ndis.Status {
				return c.b.CoOidRequest(c.af, nil, nil, &ndis.OidRequest{})
			})
		}
		// While the close is pending...
		x.cm.closeAf = func(any) ndis.Status { return ndis.StatusPending }
		rlIs(t, "close", x.c1.b.ClCloseAddressFamily(x.c1.af), ndis.StatusPending)
		dead(x.c1)
		rlMust(t, x.cm.closeAfComplete(ndis.StatusSuccess, x.c1.af), "complete")
		// ...and after it.
		x.cm.closeAf = nil
		rlMust(t, x.c2.b.ClCloseAddressFamily(x.c2.af), "close")
		dead(x.c2)
		x.Teardown()
	})
}

func TestRule_R_AF_15_CallManagerClosedAfWithItsVcs(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		h, _ := x.cmVc(x.c2) // idle: does not block the client's close (R-AF-12)
		x.warned("R-AF-15", func() { rlMust(t, x.c2.b.ClCloseAddressFamily(x.c2.af), "close") })
		rlMust(t, x.cm.del(h), "the call manager still deletes its VC")
		if x.c2.count("CoDeleteVc") != 1 {
			t.Errorf("client not told of the deletion")
		}
		x.Teardown()
	})
}

func TestRule_R_AF_16_CloseAfStatus(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		// NOT_ACCEPTED: the AF stays open, no violation.
		x.cm.closeAf = func(any) ndis.Status { return ndis.StatusNotAccepted }
		rlIs(t, "close", x.c1.b.ClCloseAddressFamily(x.c1.af), ndis.StatusNotAccepted)
		// Any other failure is reported; the AF stays open too.
		x.cm.closeAf = func(any) ndis.Status { return ndis.StatusFailure }
		x.check("R-AF-16", ndis.StatusFailure, ndis.StatusSuccess, func() ndis.Status { return x.c1.b.ClCloseAddressFamily(x.c1.af) })
		x.cm.closeAf = func(any) ndis.Status { return ndis.StatusPending }
		rlIs(t, "close", x.c1.b.ClCloseAddressFamily(x.c1.af), ndis.StatusPending)
		x.warned("R-AF-16", func() { rlMust(t, x.cm.closeAfComplete(ndis.StatusResources, x.c1.af), "complete") })
		if x.c1.last("CloseAfComplete") != "CloseAfComplete(NDIS_STATUS_RESOURCES)" {
			t.Errorf("completion %q", x.c1.last("CloseAfComplete"))
		}
		x.cm.closeAf = nil
		s := x.sap(x.c1, "svc") // still open
		x.unsap(x.c1, s)
		x.Teardown()
	})
}

func TestRule_R_AF_18_NotifyCloseBeforeUnbind(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		if x.mp != nil {
			x.refuse("R-AF-18", ndis.StatusFailure, func() ndis.Status { return x.cm.b.CloseAdapterEx() })
		}
		rlMust(t, x.cm.notifyCloseAf(x.c1.af), "notify")
		x.refuse("R-AF-18", ndis.StatusFailure, func() ndis.Status { return x.cm.notifyCloseAf(x.c1.af) })
		x.Teardown()
	})
}

func TestRule_R_AF_19_NoNewWorkDuringNotifyClose(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.newVc(x.c2)
		rlMust(t, x.cm.notifyCloseAf(x.c2.af), "notify")
		x.refuse("R-AF-19", ndis.StatusFailure, func() ndis.Status {
			_, st := x.c2.b.ClRegisterSap(x.c2.af, &rlSap{}, memdrv.ServiceSap("x"))
			return st
		})
		x.refuse("R-AF-19", ndis.StatusFailure, func() ndis.Status {
			_, st := x.c2.b.ClMakeCall(vc, rlParams(), nil)
			return st
		})
		// Teardown is still allowed.
		rlMust(t, x.c2.b.CoDeleteVc(vc), "delete")
		rlMust(t, x.c2.b.ClCloseAddressFamily(x.c2.af), "close")
		x.Teardown()
	})
}

func TestRule_R_AF_20_PendedNotifyCloseCompleted(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		x.c2.notifyClose = func() ndis.Status { return ndis.StatusPending }
		rlIs(t, "notify", x.cm.notifyCloseAf(x.c2.af), ndis.StatusPending)
		// Until the client completes it, Audit reports the pended notification.
		for _, r := range []string{"R-GEN-2", "R-AF-23", "R-AF-23"} {
			x.Expect(r)
		}
		found := false
		for _, v := range x.m.Audit() {
			found = found || v.Rule == "R-GEN-2" && v.Func == "NotifyCloseAf" && v.Object == x.c2.af.String()
		}
		if !found {
			t.Errorf("audit did not report the pended notify-close")
		}
		// The client closes the AF, then completes the notification with
		// the handle it may still use for that (R-AF-14).
		rlMust(t, x.c2.b.ClCloseAddressFamily(x.c2.af), "close")
		rlMust(t, x.c2.b.ClNotifyCloseAddressFamilyComplete(x.c2.af, ndis.StatusSuccess), "complete")
		if n := x.cm.count("NotifyCloseAfComplete(NDIS_STATUS_SUCCESS)"); n != 1 {
			t.Errorf("call manager got %d notify completions", n)
		}
		x.refuse("R-GEN-2", ndis.StatusFailure, func() ndis.Status {
			return x.c2.b.ClNotifyCloseAddressFamilyComplete(x.c2.af, ndis.StatusSuccess)
		})
		x.Teardown()
	})
}

func TestRule_R_AF_21_NotifyCompleteOnlyAfterPending(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		rlIs(t, "notify", x.cm.notifyCloseAf(x.c1.af), ndis.StatusSuccess)
		if n := x.cm.count("NotifyCloseAfComplete"); n != 0 {
			t.Errorf("ProtocolCmNotifyCloseAfComplete called after a SUCCESS return")
		}
		// Completed inside the handler, then PENDING: delivered once.
		x.c2.notifyClose = func() ndis.Status {
			rlMust(t, x.c2.b.ClNotifyCloseAddressFamilyComplete(x.c2.af, ndis.StatusSuccess), "early complete")
			return ndis.StatusPending
		}
		rlIs(t, "notify", x.cm.notifyCloseAf(x.c2.af), ndis.StatusPending)
		if n := x.cm.count("NotifyCloseAfComplete"); n != 1 {
			t.Errorf("%d notify completions", n)
		}
		x.Teardown()
	})
	// The in-memory call managers see the same.
	for _, topo := range ndistest.Topologies {
		for _, mode := range []memdrv.Mode{memdrv.Immediate, memdrv.Pend} {
			t.Run("memdrv/"+string(topo)+"/"+mode.String(), func(t *testing.T) {
				n := ndistest.New(t, topo, mode)
				ca, _, _ := n.Ready("echo")
				n.Teardown()
				var got bool
				if n.MCM != nil {
					_, got = n.MCM.NotifyCompleted(ca.H)
				} else {
					_, got = n.CM.NotifyCompleted(ca.H)
				}
				if want := mode != memdrv.Immediate; got != want {
					t.Errorf("ProtocolCmNotifyCloseAfComplete delivered=%v, want %v", got, want)
				}
			})
		}
	}
}

func TestRule_R_AF_23_UnbindWithAfOpenRefused(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		x.refuse("R-AF-23", ndis.StatusFailure, func() ndis.Status { return x.c1.b.CloseAdapterEx() })
		x.refuse("R-AF-23", ndis.StatusFailure, func() ndis.Status { return x.ad.RemoveAdapter() })
		x.Expect("R-AF-23")
		x.Expect("R-AF-23")
		n := 0
		for _, v := range x.m.Audit() {
			if v.Rule == "R-AF-23" {
				n++
			}
		}
		if n != 2 {
			t.Errorf("audit reported %d open AFs, want 2", n)
		}
		x.Teardown()
	})
}

func TestRule_R_SAP_1_RegisterSapReachesTheCallManager(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		var got *ndis.Sap
		x.cm.regSap = func(h *ndis.Sap) (any, ndis.Status) { got = h; return &rlSap{h: h}, ndis.StatusSuccess }
		s := x.sap(x.c1, "svc")
		if got != s || x.cm.count("RegisterSap("+x.c1.af.String()+",svc)") != 1 {
			t.Errorf("ProtocolCmRegisterSap got %v, want %v; log %v", got, s, x.cm.all())
		}
		x.unsap(x.c1, s)
		x.Teardown()
	})
}

func TestRule_R_SAP_2_NilSapRefused(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		x.refuse("R-SAP-2", ndis.StatusInvalidData, func() ndis.Status {
			_, st := x.c1.b.ClRegisterSap(x.c1.af, &rlSap{}, nil)
			return st
		})
		s := x.sap(x.c1, "svc")
		x.unsap(x.c1, s)
		x.Teardown()
	})
}

func TestRule_R_SAP_3_FailedRegistrationFreesTheSap(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		before := x.snap()
		x.cm.regSap = func(*ndis.Sap) (any, ndis.Status) { return nil, ndis.StatusInvalidData }
		s, st := x.c1.b.ClRegisterSap(x.c1.af, &rlSap{}, memdrv.ServiceSap("svc"))
		rlIs(t, "register", st, ndis.StatusInvalidData)
		if s != nil || x.snap() != before {
			t.Errorf("failed registration left state: %v\n%s", s, x.snap())
		}
		x.cm.regSap = func(*ndis.Sap) (any, ndis.Status) { return nil, ndis.StatusPending }
		s, st = x.c1.b.ClRegisterSap(x.c1.af, &rlSap{}, memdrv.ServiceSap("svc"))
		rlIs(t, "register", st, ndis.StatusPending)
		rlMust(t, x.cm.regSapComplete(ndis.StatusInvalidData, s, nil), "complete")
		if x.c1.last("RegisterSapComplete") != "RegisterSapComplete(NDIS_STATUS_INVALID_DATA,nil=true)" || x.snap() != before {
			t.Errorf("completion %q\n%s", x.c1.last("RegisterSapComplete"), x.snap())
		}
		x.refuse("R-SAP-6", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClDeregisterSap(s) })
		h, _ := x.cmVc(x.c1)
		x.refuse("R-SAP-11", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchIncomingCall(s, h, rlParams()) })
		rlMust(t, x.cm.del(h), "delete")
		x.Teardown() // the AF closes: the SAP no longer counts
	})
}

func TestRule_R_SAP_4_DispatchOnRegisteringSap(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		x.cm.regSap = func(*ndis.Sap) (any, ndis.Status) { return nil, ndis.StatusPending }
		s, st := x.c2.b.ClRegisterSap(x.c2.af, &rlSap{}, memdrv.ServiceSap("svc"))
		rlIs(t, "register", st, ndis.StatusPending)
		in, _ := x.incoming(x.c2, s) // permitted before the registration completes
		x.wantState(in, "ACTIVE/CONNECTED")
		rlMust(t, x.cm.regSapComplete(ndis.StatusSuccess, s, &rlSap{h: s}), "complete")
		x.remoteHangup(x.c2, in)
		x.unsap(x.c2, s)
		x.Teardown()
	})
}

func TestRule_R_SAP_6_RedundantDeregisterRefused(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		x.cm.regSap = func(*ndis.Sap) (any, ndis.Status) { return nil, ndis.StatusPending }
		s, _ := x.c1.b.ClRegisterSap(x.c1.af, &rlSap{}, memdrv.ServiceSap("svc"))
		x.refuse("R-SAP-6", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClDeregisterSap(s) }) // still registering
		rlMust(t, x.cm.regSapComplete(ndis.StatusSuccess, s, &rlSap{h: s}), "complete")
		x.cm.deregSap = func(any) ndis.Status { return ndis.StatusPending }
		x.unsap(x.c1, s)
		x.refuse("R-SAP-6", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClDeregisterSap(s) }) // deregistering
		rlMust(t, x.cm.deregSapComplete(ndis.StatusSuccess, s), "complete")
		x.refuse("R-SAP-6", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClDeregisterSap(s) }) // dead
		if n := x.c1.count("DeregisterSapComplete"); n != 1 {
			t.Errorf("%d deregistration completions", n)
		}
		x.Teardown()
	})
}

// R-SAP-7 as written (an AF that starts closing releases its SAPs) cannot
// arise: R-AF-12 refuses to close an AF that still has SAPs. Deregistering
// a SAP that is already gone fails at once instead.
func TestRule_R_SAP_7_DeregisterOfReleasedSapFails(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		s := x.sap(x.c1, "svc")
		x.refuse("R-AF-12", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClCloseAddressFamily(x.c1.af) })
		x.unsap(x.c1, s)
		rlMust(t, x.c1.b.ClCloseAddressFamily(x.c1.af), "close")
		x.refuse("R-SAP-6", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClDeregisterSap(s) })
		if n := x.c1.count("DeregisterSapComplete"); n != 1 {
			t.Errorf("%d deregistration completions", n)
		}
		x.Teardown()
	})
}

func TestRule_R_SAP_8_FailedDeregistration(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		s := x.sap(x.c1, "svc")
		x.cm.deregSap = func(any) ndis.Status { return ndis.StatusFailure }
		x.warned("R-SAP-8", func() { x.unsap(x.c1, s) }) // still PENDING (spec §9.10)
		if x.c1.last("DeregisterSapComplete") != "DeregisterSapComplete(NDIS_STATUS_FAILURE)" {
			t.Errorf("completion %q", x.c1.last("DeregisterSapComplete"))
		}
		if ss := x.m.Snapshot().Saps; len(ss) != 1 || ss[0].State != "REGISTERED" {
			t.Errorf("SAP after failed deregistration: %+v", ss)
		}
		x.cm.deregSap = nil
		x.unsap(x.c1, s)
		x.Teardown()
	})
}

func TestRule_R_SAP_9_DeregisterKeepsCalls(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		s := x.sap(x.c2, "svc")
		in, _ := x.incoming(x.c2, s)
		x.unsap(x.c2, s)
		x.wantState(in, "ACTIVE/CONNECTED")
		x.c2.b.CoSendNetBufferLists(in, rlChain("still up"), 0)
		if got := x.c2.sent(); len(got) != 1 || got[0] != ndis.StatusSuccess {
			t.Errorf("send after deregistration: %v", got)
		}
		x.remoteHangup(x.c2, in)
		x.Teardown()
	})
}

func TestRule_R_SAP_11_IncomingCallOnlyToSapOwner(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		s2 := x.sap(x.c2, "svc")
		h, _ := x.cmVc(x.c1) // a VC for c1...
		p := rlParams()
		x.refuse("R-SAP-11", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchIncomingCall(s2, h, p) }) // ...on c2's SAP
		x.refuse("R-SAP-11", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchIncomingCall(nil, h, p) })
		s1 := x.sap(x.c1, "svc1")
		x.unsap(x.c1, s1)
		x.refuse("R-SAP-11", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchIncomingCall(s1, h, p) })
		rlMust(t, x.cm.del(h), "delete")
		x.unsap(x.c2, s2)
		x.Teardown()
	})
}
