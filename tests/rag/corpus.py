"""A small IT knowledge base for the tests: real-looking articles with headings and lists."""

from __future__ import annotations

VPN = """# VPN keeps disconnecting

Remote workers report that the VPN client drops the tunnel every few minutes.

## Check the client version

The GlobalProtect client must be version 6.1 or newer. Older clients lose the tunnel when the
laptop switches between Wi-Fi access points.

## Renew the certificate

1. Open the certificate manager.
2. Delete the expired machine certificate.
3. Reconnect: a new certificate is issued automatically.

## Error 0x80070005

This error means access is denied to the credential store. Run the repair tool as an
administrator, then restart the laptop.
"""

PRINTER = """# Adding a network printer

Printers on floor 3 are shared through the print server PRN-03.

## Windows

Open Settings, then Printers & scanners, then Add device, and pick the printer by its asset
tag. The driver installs itself.

## macOS

Use System Settings, Printers, the plus button, and the IP address printed on the label.
"""

PASSWORD = """# Resetting a forgotten password

Users can reset their own password at the self-service portal after verifying their phone
number. If the account is locked after five failed attempts, the service desk unlocks it.

## Password rules

Passwords need at least 14 characters and must not repeat any of the last 10 passwords.
"""

OUTLOOK = """# Outlook does not send email

Messages stay in the outbox when the mailbox is over its quota of 50 GB. Archive old mail or
ask for a larger mailbox. If the outbox holds a message with a large attachment, remove it.
"""

ARTICLES = {"vpn.md": VPN, "printer.md": PRINTER, "password.md": PASSWORD, "outlook.md": OUTLOOK}
