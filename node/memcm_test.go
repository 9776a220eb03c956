package node

import "github.com/condis-project/condis/memdrv"

// The control plane's tests run over memdrv's in-memory call manager under
// these names. It lives in memdrv so that node does not import the test
// drivers.
type MemCallManager = memdrv.CallManager

// NewMemCallManager is memdrv.NewCallManager.
func NewMemCallManager(mcm *memdrv.MCM, fab *memdrv.Fabric) *MemCallManager {
	return memdrv.NewCallManager(mcm, fab)
}
