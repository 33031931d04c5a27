"""Model Explorer extensions for RustyASG graphs (loaded by Model Explorer as ``rustyasg.viz.explorer.main``)."""
