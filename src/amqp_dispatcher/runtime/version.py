"""The version shared by the compiler, the runtime and the generated artifact."""

VERSION = "2.0.0"
