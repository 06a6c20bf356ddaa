package delegation

// RoleTier0 is the built-in role that may do everything, and the only one that may touch
// protected objects, the holders of tier-0 and the delegation configuration.
const RoleTier0 = "tier0-admin"
