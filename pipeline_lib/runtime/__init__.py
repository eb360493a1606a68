"""What every stage may use and that uses nothing of the package: atomic artifact files, the allocator setting of
the jobs, GPU allocation."""
