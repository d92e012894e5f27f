"""The event contract shared by the simulators and the detection job: versioned JSON Schemas."""
