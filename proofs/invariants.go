package proofs

// Invariant is the ID of a SPEC §8 universal invariant (or STRUCTURE, the
// explorer's own structural check: no panic, decisions consistent with the
// keys they return).
type Invariant string

// The universal invariants of SPEC §8 that the explorer checks on every edge.
// INV-RECORDING is the NVR service's (recording never depends on auth) and
// is checked by the service's tests, not here.
const (
	InvNoAuthLocked Invariant = "INV-NOAUTH-LOCKED"
	InvNoOracle     Invariant = "INV-NOORACLE"
	InvCause        Invariant = "INV-CAUSE"
	InvTerminate    Invariant = "INV-TERMINATE"
	InvNoShorten    Invariant = "INV-NOSHORTEN"
	InvBounded      Invariant = "INV-BOUNDED"
	InvLastAdmin    Invariant = "INV-LASTADMIN"
	InvReset        Invariant = "INV-RESET"
	InvReplay       Invariant = "INV-REPLAY"
	InvDeterminism  Invariant = "INV-DETERMINISM"
	InvClock        Invariant = "INV-CLOCK"
	InvStructure    Invariant = "STRUCTURE"
)

// Policy properties of SPEC §8.
const (
	PropNoDoS  = "P-NODOS"
	PropBudget = "P-BUDGET"
)

type inv uint8

const (
	invNoAuth inv = iota
	invNoOracle
	invCause
	invTerminate
	invNoShorten
	invBounded
	invLastAdmin
	invReset
	invReplay
	invDeterminism
	invClock
	invStructure
	numInv
	// invNoDoS is the P-NODOS probe of the attack search; it is a policy
	// property, not a universal invariant.
	invNoDoS  = numInv
	numChecks = numInv + 1
)

var invIDs = [numChecks]Invariant{
	InvNoAuthLocked, InvNoOracle, InvCause, InvTerminate, InvNoShorten, InvBounded,
	InvLastAdmin, InvReset, InvReplay, InvDeterminism, InvClock, InvStructure, PropNoDoS,
}

// invText is the SPEC sentence each check stands for.
var invText = [numChecks]string{
	"no attempt is allowed while R-ADMIT says refuse",
	"a refused attempt never reaches verification",
	"a key locks only on a counted failure that makes N within W",
	"a Locked key is Open no later than C after its lock's start or last R-EXTEND; a Held key leaves only by admin act, reset or holdFor",
	"only R-UNLOCK, R-RESET and R-FACTORY move an until earlier (and a restart serves at most the wall time that passed)",
	"level and every duration stay within the policy's caps",
	"the admin always gets in at the console within the console lock's cap",
	"after R-UNLOCK/R-RESET/R-FACTORY the affected keys are Open, counters 0, level 0",
	"with replayDedup a repeated identical wrong secret on a pair within W counts once",
	"the same inputs give the same outputs, bit for bit (and only relative time matters)",
	"a wall-clock jump changes no mode and no remaining duration; a restart never lengthens a lock",
	"Decide never panics; decisions agree with the keys they return",
	"a familiar source with the right secret is never refused because of failures from other sources",
}

// Invariants lists the universal invariants the explorer checks, in report
// order (STRUCTURE last).
func Invariants() []Invariant {
	out := make([]Invariant, numInv)
	copy(out, invIDs[:numInv])
	return out
}

// Describe returns the SPEC sentence an invariant stands for.
func (i Invariant) Describe() string {
	for j, id := range invIDs {
		if id == i {
			return invText[j]
		}
	}
	return ""
}

func invOf(id Invariant) (inv, bool) {
	for j, x := range invIDs {
		if x == id {
			return inv(j), true
		}
	}
	return 0, false
}
