"""Small pieces every layer uses: user-facing errors, atomic files, configs, progress."""
