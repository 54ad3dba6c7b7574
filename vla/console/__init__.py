"""`vla console`: command the simulated robot in words from a browser and watch what the
policy sees (server.py: the page and its WebSocket; driver.py: the scene, the policy and
the episode; overlay.py: the attention drawn over the camera; page.html: the page)."""
