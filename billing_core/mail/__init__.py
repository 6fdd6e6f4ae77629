"""E-mail: settings, transports (SMTP, a folder of .eml files) and messages."""
