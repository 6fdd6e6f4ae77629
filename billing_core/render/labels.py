"""The words on documents and e-mails in English, German and French.

Templates call `_("English text", name=value)`; the text is looked up for the document's
language (the customer's locale, e.g. de_DE -> de) and `{name}` fields are filled in.
Other languages fall back to English words, with dates and amounts still in the
customer's locale (Babel). Adding a language is adding a dictionary here.
"""

from __future__ import annotations

from typing import Any

GERMAN: dict[str, str] = {
    "Invoice": "Rechnung",
    "Draft invoice": "Rechnungsentwurf",
    "Credit note": "Gutschrift",
    "Invoice number": "Rechnungsnummer",
    "Credit note number": "Gutschriftsnummer",
    "Draft reference": "Entwurfsreferenz",
    "Issue date": "Rechnungsdatum",
    "not issued": "nicht ausgestellt",
    "Due date": "Fällig am",
    "Billing period": "Abrechnungszeitraum",
    "Service period": "Leistungszeitraum",
    "Currency": "Währung",
    "Credits invoice": "Zu Rechnung",
    "{number} of {date}": "{number} vom {date}",
    "Bill to": "Rechnungsempfänger",
    "Customer ID": "Kundennummer",
    "Tax ID": "USt-IdNr.",
    "Subscription": "Abonnement",
    "Amount due": "Fälliger Betrag",
    "by {date}": "bis {date}",
    "Amount credited": "Gutgeschriebener Betrag",
    "Reason": "Grund",
    "Description": "Beschreibung",
    "Usage": "Verbrauch",
    "Free": "Frei",
    "Billable": "Abrechenbar",
    "Unit price": "Einzelpreis",
    "Amount": "Betrag",
    "Subtotal": "Zwischensumme",
    "Total without tax": "Summe netto",
    "Total due ({currency})": "Gesamtbetrag ({currency})",
    "Total credited ({currency})": "Gutschrift gesamt ({currency})",
    "Total ({currency}), tax included": "Gesamtbetrag ({currency}) inkl. Steuern",
    "{tax} {rate} on {base}": "{tax} {rate} auf {base}",
    "of which {tax} {rate} on {base}": "darin enthalten {tax} {rate} auf {base}",
    "Reverse charge": "Steuerschuldnerschaft des Leistungsempfängers",
    "Exempt": "Steuerbefreit",
    "Reverse charge: VAT to be accounted for by the recipient (Article 196, Council "
    "Directive 2006/112/EC).":
        "Steuerschuldnerschaft des Leistungsempfängers (Reverse Charge): die Umsatzsteuer "
        "schuldet der Leistungsempfänger (Art. 196 MwSt-Systemrichtlinie 2006/112/EG).",
    "Exempt from tax: the customer is registered as tax exempt.":
        "Steuerfrei: der Kunde ist als steuerbefreit registriert.",
    "Page": "Seite",
    "{product} — base fee": "{product} — Grundgebühr",
    "Minimum spend, {product}": "Mindestumsatz, {product}",
    "Minimum for {name}": "Mindestbetrag für {name}",
    "Maximum for {name}": "Höchstbetrag für {name}",
    "Usage adjustment, {period}: {quantity} {meter}":
        "Verbrauchskorrektur, {period}: {quantity} {meter}",
    "of": "von",
    "DRAFT": "ENTWURF",
    "Fixed fee per billing period": "Grundgebühr je Abrechnungszeitraum",
    "{interval} fee for {start} – {end}, billed in advance":
        "{interval}sgebühr für {start} – {end}, im Voraus berechnet",
    "Monthly": "Monat", "Quarterly": "Quartal", "Yearly": "Jahr",
    "Prorated: {days} of {of_days} days ({start} – {end})":
        "Anteilig: {days} von {of_days} Tagen ({start} – {end})",
    "{packages} packages of {size} at {price}": "{packages} Pakete à {size} zu je {price}",
    "per {size}": "je {size}",
    "tiered": "gestaffelt",
    "Tier {number}": "Stufe {number}",
    "{start} – {end}": "{start} – {end}",
    "above {start}": "über {start}",
    "{units} × {price}": "{units} × {price}",
    "flat fee {fee}": "Pauschale {fee}",
    "Tier {number} ({range}): every unit at {price}":
        "Stufe {number} ({range}): jede Einheit zu {price}",
    "{rate} of {amount}": "{rate} von {amount}",
    "{events} × {fee} per transaction": "{events} × {fee} je Transaktion",
    "free: {amount} and {events} transactions": "frei: {amount} und {events} Transaktionen",
    "Minimum {minimum}, charged {charged}": "Mindestbetrag {minimum}, berechnet {charged}",
    "Maximum {maximum}, charged {charged}": "Höchstbetrag {maximum}, berechnet {charged}",
    "prorated: {days} of {of_days} days": "anteilig: {days} von {of_days} Tagen",
    "{percent} off": "{percent} Rabatt",
    "{amount} off": "{amount} Rabatt",
    "on {what}": "auf {what}",
    "base fee": "Grundgebühr",
    "billing cycle {number} of {cycles}": "Abrechnungszeitraum {number} von {cycles}",
    "Events for {period} that arrived after its invoice was issued; billed before: "
    "{quantity}, now {now}":
        "Ereignisse für {period}, die nach Ausstellung der Rechnung eingingen; bisher "
        "berechnet: {quantity}, jetzt {now}",
    "Line {line} of invoice {number}": "Position {line} der Rechnung {number}",
    "This is a draft, not an invoice: it has no number, its figures may still change, and "
    "nothing is due until it is issued.":
        "Dies ist ein Entwurf, keine Rechnung: Er hat keine Nummer, die Beträge können sich "
        "noch ändern, und nichts ist fällig, bis die Rechnung ausgestellt ist.",
    "Usage is measured from events timestamped from {start} up to (not including) {end} "
    "({timezone}).":
        "Der Verbrauch umfasst Ereignisse mit Zeitstempel ab {start} bis ausschließlich {end} "
        "({timezone}).",
    "Free units are deducted before pricing; each line is rounded half-up to the "
    "currency's minor unit.":
        "Freimengen werden vor der Preisberechnung abgezogen; jede Position wird kaufmännisch "
        "auf die kleinste Währungseinheit gerundet.",
    "Tax is computed on each line, rounded per line, and summed per rate.":
        "Die Steuer wird je Position berechnet, je Position gerundet und je Steuersatz "
        "summiert.",
    "This credit note reduces what is owed under invoice {number} by the amount above; "
    "where that invoice was paid already, the amount is refunded or credited to the "
    "account.":
        "Diese Gutschrift mindert den Betrag der Rechnung {number} um den obigen Betrag; "
        "war die Rechnung bereits bezahlt, wird der Betrag erstattet oder dem Konto "
        "gutgeschrieben.",
    "Hello {name},": "Guten Tag {name},",
    "here is invoice {number} from {seller} for {product}, billing period {start} – {end}.":
        "anbei die Rechnung {number} von {seller} für {product}, Abrechnungszeitraum "
        "{start} – {end}.",
    "here is credit note {number} from {seller}. It credits {amount} of invoice {invoice}.":
        "anbei die Gutschrift {number} von {seller} über {amount} zur Rechnung {invoice}.",
    "here is credit note {number} from {seller}. It credits {amount} of invoice {invoice} "
    "of {date}.":
        "anbei die Gutschrift {number} von {seller} über {amount} zur Rechnung {invoice} "
        "vom {date}.",
    "Reason: {reason}": "Grund: {reason}",
    "Invoice {number} from {seller}: {amount} due {date}":
        "Rechnung {number} von {seller}: {amount} fällig {date}",
    "now": "sofort",
    "Credit note {number} from {seller} for invoice {invoice}: {amount}":
        "Gutschrift {number} von {seller} zur Rechnung {invoice}: {amount}",
    "Quantity": "Menge",
    "Amount due: {amount}": "Fälliger Betrag: {amount}",
    ", by {date}": ", bis {date}",
    "Amount credited: {amount}": "Gutgeschriebener Betrag: {amount}",
    "Usage this period:": "Verbrauch in diesem Zeitraum:",
    "The invoice is attached as {file}": "Die Rechnung ist als {file} beigefügt",
    "The credit note is attached as {file}": "Die Gutschrift ist als {file} beigefügt",
    ", with its e-invoice data (Factur-X, EN 16931) inside the PDF and as factur-x.xml":
        ", mit den E-Rechnungsdaten (Factur-X, EN 16931) im PDF und als factur-x.xml",
    "Prepaid credit applied before tax: balance {before} → {after}":
        "Vorausbezahltes Guthaben, vor Steuern angerechnet: Saldo {before} → {after}",
    "valid until {date}": "gültig bis {date}",
    "Valid on {days} of {of_days} days of the period: at most that share of the charges":
        "Gültig an {days} von {of_days} Tagen des Zeitraums: höchstens dieser Anteil der "
        "Entgelte",
    "Included units: {covered} of {balance} used ({units} this period + {rolled} rolled "
    "over); {left} left":
        "Inklusiveinheiten: {covered} von {balance} genutzt ({units} in diesem Zeitraum + "
        "{rolled} übertragen); {left} übrig",
    "{units} roll over to the next period": "{units} werden in den nächsten Zeitraum "
                                            "übertragen",
    "Billing period: {period}. This alert is sent once per billing period.":
        "Abrechnungszeitraum: {period}. Dieser Hinweis wird einmal pro Zeitraum gesendet.",
}

FRENCH: dict[str, str] = {
    "Invoice": "Facture",
    "Draft invoice": "Projet de facture",
    "Credit note": "Avoir",
    "Invoice number": "Numéro de facture",
    "Credit note number": "Numéro d'avoir",
    "Draft reference": "Référence du projet",
    "Issue date": "Date d'émission",
    "not issued": "non émise",
    "Due date": "Date d'échéance",
    "Billing period": "Période de facturation",
    "Service period": "Période de service",
    "Currency": "Devise",
    "Credits invoice": "Facture d'origine",
    "{number} of {date}": "{number} du {date}",
    "Bill to": "Facturé à",
    "Customer ID": "Identifiant client",
    "Tax ID": "N° TVA",
    "Subscription": "Abonnement",
    "Amount due": "Montant dû",
    "by {date}": "avant le {date}",
    "Amount credited": "Montant crédité",
    "Reason": "Motif",
    "Description": "Description",
    "Usage": "Consommation",
    "Free": "Gratuit",
    "Billable": "Facturable",
    "Unit price": "Prix unitaire",
    "Amount": "Montant",
    "Subtotal": "Sous-total",
    "Total without tax": "Total HT",
    "Total due ({currency})": "Total dû ({currency})",
    "Total credited ({currency})": "Total crédité ({currency})",
    "Total ({currency}), tax included": "Total TTC ({currency})",
    "{tax} {rate} on {base}": "{tax} {rate} sur {base}",
    "of which {tax} {rate} on {base}": "dont {tax} {rate} sur {base}",
    "Reverse charge": "Autoliquidation",
    "Exempt": "Exonéré",
    "Reverse charge: VAT to be accounted for by the recipient (Article 196, Council "
    "Directive 2006/112/EC).":
        "Autoliquidation : TVA due par le preneur (article 196 de la directive "
        "2006/112/CE).",
    "Exempt from tax: the customer is registered as tax exempt.":
        "Exonération de taxe : le client est enregistré comme exonéré.",
    "Page": "Page",
    "{product} — base fee": "{product} — forfait",
    "Minimum spend, {product}": "Minimum de dépense, {product}",
    "Minimum for {name}": "Minimum pour {name}",
    "Maximum for {name}": "Maximum pour {name}",
    "Usage adjustment, {period}: {quantity} {meter}":
        "Régularisation de consommation, {period} : {quantity} {meter}",
    "of": "sur",
    "DRAFT": "PROJET",
    "Fixed fee per billing period": "Forfait par période de facturation",
    "{interval} fee for {start} – {end}, billed in advance":
        "Forfait {interval} du {start} au {end}, facturé d'avance",
    "Monthly": "mensuel", "Quarterly": "trimestriel", "Yearly": "annuel",
    "Prorated: {days} of {of_days} days ({start} – {end})":
        "Au prorata : {days} jours sur {of_days} ({start} – {end})",
    "{packages} packages of {size} at {price}": "{packages} lots de {size} à {price}",
    "per {size}": "par {size}",
    "tiered": "par paliers",
    "Tier {number}": "Palier {number}",
    "{start} – {end}": "{start} – {end}",
    "above {start}": "au-delà de {start}",
    "{units} × {price}": "{units} × {price}",
    "flat fee {fee}": "forfait {fee}",
    "Tier {number} ({range}): every unit at {price}":
        "Palier {number} ({range}) : chaque unité à {price}",
    "{rate} of {amount}": "{rate} de {amount}",
    "{events} × {fee} per transaction": "{events} × {fee} par transaction",
    "free: {amount} and {events} transactions": "gratuit : {amount} et {events} transactions",
    "Minimum {minimum}, charged {charged}": "Minimum {minimum}, facturé {charged}",
    "Maximum {maximum}, charged {charged}": "Maximum {maximum}, facturé {charged}",
    "prorated: {days} of {of_days} days": "au prorata : {days} jours sur {of_days}",
    "{percent} off": "remise de {percent}",
    "{amount} off": "remise de {amount}",
    "on {what}": "sur {what}",
    "base fee": "forfait",
    "billing cycle {number} of {cycles}": "période {number} sur {cycles}",
    "Events for {period} that arrived after its invoice was issued; billed before: "
    "{quantity}, now {now}":
        "Événements de {period} reçus après l'émission de sa facture ; facturé "
        "auparavant : {quantity}, désormais {now}",
    "Line {line} of invoice {number}": "Ligne {line} de la facture {number}",
    "This is a draft, not an invoice: it has no number, its figures may still change, and "
    "nothing is due until it is issued.":
        "Ceci est un projet, pas une facture : il n'a pas de numéro, ses montants peuvent "
        "encore changer et rien n'est dû avant son émission.",
    "Usage is measured from events timestamped from {start} up to (not including) {end} "
    "({timezone}).":
        "La consommation comprend les événements horodatés du {start} jusqu'au {end} exclu "
        "({timezone}).",
    "Free units are deducted before pricing; each line is rounded half-up to the "
    "currency's minor unit.":
        "Les unités gratuites sont déduites avant tarification ; chaque ligne est arrondie "
        "au plus proche à l'unité monétaire inférieure.",
    "Tax is computed on each line, rounded per line, and summed per rate.":
        "La taxe est calculée ligne par ligne, arrondie par ligne puis totalisée par taux.",
    "This credit note reduces what is owed under invoice {number} by the amount above; "
    "where that invoice was paid already, the amount is refunded or credited to the "
    "account.":
        "Cet avoir réduit le montant dû au titre de la facture {number} du montant "
        "ci-dessus ; si cette facture a déjà été payée, le montant est remboursé ou porté "
        "au crédit du compte.",
    "Hello {name},": "Bonjour {name},",
    "here is invoice {number} from {seller} for {product}, billing period {start} – {end}.":
        "voici la facture {number} de {seller} pour {product}, période de facturation du "
        "{start} au {end}.",
    "here is credit note {number} from {seller}. It credits {amount} of invoice {invoice}.":
        "voici l'avoir {number} de {seller}, d'un montant de {amount}, sur la facture "
        "{invoice}.",
    "here is credit note {number} from {seller}. It credits {amount} of invoice {invoice} "
    "of {date}.":
        "voici l'avoir {number} de {seller}, d'un montant de {amount}, sur la facture "
        "{invoice} du {date}.",
    "Reason: {reason}": "Motif : {reason}",
    "Invoice {number} from {seller}: {amount} due {date}":
        "Facture {number} de {seller} : {amount} à payer {date}",
    "now": "immédiatement",
    "Credit note {number} from {seller} for invoice {invoice}: {amount}":
        "Avoir {number} de {seller} sur la facture {invoice} : {amount}",
    "Quantity": "Quantité",
    "Amount due: {amount}": "Montant dû : {amount}",
    ", by {date}": ", avant le {date}",
    "Amount credited: {amount}": "Montant crédité : {amount}",
    "Usage this period:": "Consommation sur la période :",
    "The invoice is attached as {file}": "La facture est jointe : {file}",
    "The credit note is attached as {file}": "L'avoir est joint : {file}",
    ", with its e-invoice data (Factur-X, EN 16931) inside the PDF and as factur-x.xml":
        ", avec ses données de facture électronique (Factur-X, EN 16931) dans le PDF et "
        "en factur-x.xml",
    "Prepaid credit applied before tax: balance {before} → {after}":
        "Crédit prépayé imputé avant taxes : solde {before} → {after}",
    "valid until {date}": "valable jusqu’au {date}",
    "Valid on {days} of {of_days} days of the period: at most that share of the charges":
        "Valable {days} jours sur {of_days} de la période : au plus cette part des frais",
    "Included units: {covered} of {balance} used ({units} this period + {rolled} rolled "
    "over); {left} left":
        "Unités incluses : {covered} sur {balance} utilisées ({units} pour la période + "
        "{rolled} reportées) ; reste {left}",
    "{units} roll over to the next period": "{units} reportées sur la période suivante",
    "Billing period: {period}. This alert is sent once per billing period.":
        "Période de facturation : {period}. Cette alerte est envoyée une fois par période.",
}

CATALOGS: dict[str, dict[str, str]] = {"de": GERMAN, "fr": FRENCH}
LANGUAGES = ("en", *CATALOGS)


def language(locale: str) -> str:
    """'de' for 'de_DE' (the part before the territory)."""
    return locale.replace("-", "_").split("_")[0].lower()


def translate(locale: str, text: str, **values: Any) -> str:
    """`text` in the locale's language (English when it has no translation), with its
    `{fields}` filled in."""
    found = CATALOGS.get(language(locale), {}).get(text, text)
    return found.format(**values) if values else found
