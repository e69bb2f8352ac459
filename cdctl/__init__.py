"""cdctl: the command line of tomcat-cd (render, check; deploy and history come with the engine)."""
