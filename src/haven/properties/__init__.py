"""Properties: buildings or sites an organization manages."""
