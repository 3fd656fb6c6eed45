"""Reference data from CCData: exchanges with their grades, spot instruments, assets and volumes."""
