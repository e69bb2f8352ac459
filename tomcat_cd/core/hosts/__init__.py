"""What happens on machines: the scripts the platform stack runs over SSH, and their order."""
