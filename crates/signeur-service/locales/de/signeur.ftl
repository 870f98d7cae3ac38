invitation-subject = { $org } bittet Sie, ein Dokument zu unterschreiben
greeting = Hallo { $name },
greeting-anonymous = Hallo,
invitation-intro = { $org } bittet Sie, „{ $title }“ zu unterschreiben.
invitation-message = Nachricht von { $org }:
invitation-open = Dokument öffnen
invitation-code = Ihr Zugangscode:
invitation-code-hint = Geben Sie diesen Code ein, wenn die Signaturseite danach fragt. Geben Sie ihn nicht weiter.
invitation-expires = Der Link läuft am { $date } ab.
footer = Diese Nachricht wurde von Signeur im Auftrag von { $org } gesendet.
test-subject = Signeur-Testnachricht
test-body = Dies ist eine Testnachricht von Signeur. Ihre E-Mail-Einstellungen funktionieren.
invitation-resent = Dies ist eine neue Einladung: Der Zugangscode aus früheren Nachrichten gilt nicht mehr.
notice-reason = Grund:
completed-subject = { $org }: Das Dokument wurde unterschrieben
completed-body = Alle haben „{ $title }“ unterschrieben. Das versiegelte Dokument ist bereit.
completed-download = Unterschriebenes Dokument herunterladen
declined-subject = { $org }: Die Unterschrift wurde abgelehnt
declined-body = { $signer } hat abgelehnt, „{ $title }“ zu unterschreiben. Die Anfrage ist geschlossen.
cancelled-subject = { $org } hat eine Signaturanfrage zurückgezogen
cancelled-body = { $org } hat „{ $title }“ zurückgezogen. Der Link aus der früheren Nachricht funktioniert nicht mehr.
reminder-subject = Erinnerung: { $org } wartet auf Ihre Unterschrift
reminder-body = „{ $title }“ wartet noch auf Ihre Unterschrift. Der Link läuft am { $date } ab.
page-title = „{ $title }“ unterschreiben
page-from = { $org } bittet Sie, „{ $title }“ zu unterschreiben.
lang-switch = Sprache
gate-heading = Zugangscode eingeben
gate-help = Wir haben Ihnen mit diesem Link einen sechsstelligen Zugangscode per E-Mail geschickt. Geben Sie ihn ein, um das Dokument zu öffnen.
gate-label = Zugangscode
gate-submit = Bestätigen
gate-wrong = { $left ->
    [one] Dieser Code ist nicht richtig. Sie haben noch einen Versuch.
   *[other] Dieser Code ist nicht richtig. Sie haben noch { $left } Versuche.
}
locked-heading = Zu viele falsche Codes
locked-body = Dieser Link ist bis { $until } UTC gesperrt. Versuchen Sie es dann erneut oder bitten Sie den Absender, die Einladung mit einem neuen Code erneut zu senden.
document-heading = Dokument
document-pages = { $count ->
    [one] 1 Seite
   *[other] { $count } Seiten
}
document-download = Dokument herunterladen (PDF)
sign-heading = Ihre Unterschrift
sign-name = Vollständiger Name
sign-representing = Im Namen einer Organisation unterschreiben (optional)
sign-entity = Organisation
sign-role = Funktion
sign-entity-id = Kennung der Organisation
sign-draw = Unterschrift zeichnen (optional)
sign-clear = Zeichnung löschen
sign-consent = Ich habe das Dokument gelesen und bin einverstanden, es elektronisch zu unterschreiben.
sign-submit = Unterschreiben
decline-open = Ablehnen
decline-heading = Unterschrift ablehnen
decline-help = Teilen Sie dem Absender mit, warum Sie ablehnen. Die Anfrage wird danach für alle Unterzeichnenden geschlossen.
decline-reason = Grund
decline-submit = Ablehnen
decline-back = Zurück zum Dokument
signed-heading = Sie haben unterschrieben
signed-body = Vielen Dank. Ihre Unterschrift unter „{ $title }“ wurde am { $date } UTC erfasst.
signed-waiting = Das unterschriebene Dokument steht hier bereit, sobald alle unterschrieben haben und es versiegelt wurde.
signed-download = Unterschriebenes Dokument herunterladen
signed-unlock = Geben Sie den Zugangscode aus Ihrer Einladungs-E-Mail ein, um das unterschriebene Dokument herunterzuladen.
gone-heading = Dieser Link funktioniert nicht mehr
gone-expired = Diese Signaturanfrage ist abgelaufen.
gone-cancelled = Der Absender hat diese Signaturanfrage storniert.
gone-declined = Diese Signaturanfrage wurde abgelehnt und kann nicht mehr unterschrieben werden.
gone-invalidated = Dieser Signaturlink ist nicht mehr gültig.
turn-heading = Sie sind noch nicht an der Reihe
turn-body = Andere Unterzeichnende unterschreiben „{ $title }“ vor Ihnen. Dieser Link funktioniert, sobald Sie an der Reihe sind.
notfound-heading = Link nicht gefunden
notfound-body = Prüfen Sie, ob Sie den vollständigen Link aus Ihrer Einladung geöffnet haben.
ratelimit-heading = Zu viele Anfragen
ratelimit-body = Diese Seite wurde in kurzer Zeit zu oft aufgerufen. Warten Sie einen Moment und laden Sie sie dann neu.
error-heading = Bitte versuchen Sie es erneut
csrf-failed = Das Formular ist abgelaufen. Gehen Sie zurück zum Dokument und versuchen Sie es erneut.
error-missing = Bitte füllen Sie „{ $field }“ aus.
error-invalid = Bitte prüfen Sie „{ $field }“.
gone-rotated = Dieser Link wurde durch einen neueren ersetzt. Verwenden Sie den zuletzt erhaltenen Link.
session-cancel = Abbrechen und zurückkehren
document-page = Seite { $n } von { $count }
document-more-pages = { $count ->
    [one] Eine weitere Seite finden Sie im Dokument zum Herunterladen.
   *[other] { $count } weitere Seiten finden Sie im Dokument zum Herunterladen.
}
page-footer = Signeur wickelt diese Unterzeichnung im Auftrag von { $org } ab.
