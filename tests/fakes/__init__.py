"""Hand-written fakes of services that cannot run here (the only mocks in the project)."""
