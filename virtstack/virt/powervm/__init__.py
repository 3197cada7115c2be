"""The PowerVM driver: LPARs on IBM POWER through the PowerVM REST API
(NovaLink or HMC), using pypowervm. ``driver.PowerVMDriver`` orchestrates;
see docs/powervm.md for how the modules map to the reference design."""
