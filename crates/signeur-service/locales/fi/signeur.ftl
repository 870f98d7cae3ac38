invitation-subject = { $org } pyytää sinua allekirjoittamaan asiakirjan
greeting = Hei { $name },
greeting-anonymous = Hei,
invitation-intro = { $org } pyytää sinua allekirjoittamaan asiakirjan ”{ $title }”.
invitation-message = Viesti lähettäjältä { $org }:
invitation-open = Avaa asiakirja
invitation-code = Pääsykoodisi:
invitation-code-hint = Syötä koodi, kun allekirjoitussivu pyytää sitä. Älä kerro sitä muille.
invitation-expires = Linkki vanhenee { $date }.
footer = Tämän viestin lähetti Signeur organisaation { $org } puolesta.
test-subject = Signeurin testiviesti
test-body = Tämä on Signeurin testiviesti. Sähköpostiasetuksesi toimivat.
invitation-resent = Tämä on uusi kutsu: aiempien viestien pääsykoodi ei enää toimi.
notice-reason = Syy:
completed-subject = { $org }: asiakirja on allekirjoitettu
completed-body = Kaikki ovat allekirjoittaneet asiakirjan ”{ $title }”. Sinetöity asiakirja on valmis.
completed-download = Lataa allekirjoitettu asiakirja
declined-subject = { $org }: allekirjoituksesta kieltäydyttiin
declined-body = { $signer } kieltäytyi allekirjoittamasta asiakirjaa ”{ $title }”. Pyyntö on suljettu.
cancelled-subject = { $org } perui allekirjoituspyynnön
cancelled-body = { $org } perui pyynnön ”{ $title }”. Aiemman viestin linkki ei enää toimi.
reminder-subject = Muistutus: { $org } odottaa allekirjoitustasi
reminder-body = ”{ $title }” odottaa yhä allekirjoitustasi. Linkki vanhenee { $date }.
page-title = Allekirjoita ”{ $title }”
page-from = { $org } pyytää sinua allekirjoittamaan asiakirjan ”{ $title }”.
lang-switch = Kieli
gate-heading = Anna pääsykoodi
gate-help = Lähetimme sinulle sähköpostitse kuusinumeroisen pääsykoodin tämän linkin mukana. Anna se avataksesi asiakirjan.
gate-label = Pääsykoodi
gate-submit = Vahvista
gate-wrong = { $left ->
    [one] Koodi ei ole oikein. Sinulla on vielä yksi yritys.
   *[other] Koodi ei ole oikein. Sinulla on vielä { $left } yritystä.
}
locked-heading = Liian monta väärää koodia
locked-body = Linkki on lukittu { $until } UTC asti. Yritä silloin uudelleen tai pyydä lähettäjää lähettämään kutsu ja uusi koodi.
document-heading = Asiakirja
document-pages = { $count ->
    [one] 1 sivu
   *[other] { $count } sivua
}
document-download = Lataa asiakirja (PDF)
sign-heading = Allekirjoituksesi
sign-name = Koko nimi
sign-representing = Allekirjoitan organisaation puolesta (valinnainen)
sign-entity = Organisaatio
sign-role = Rooli
sign-entity-id = Organisaation tunnus
sign-draw = Piirrä allekirjoituksesi (valinnainen)
sign-clear = Tyhjennä piirros
sign-consent = Olen lukenut asiakirjan ja hyväksyn sen allekirjoittamisen sähköisesti.
sign-submit = Allekirjoita
decline-open = Kieltäydy
decline-heading = Kieltäydy allekirjoittamasta
decline-help = Kerro lähettäjälle, miksi kieltäydyt. Pyyntö suljetaan sen jälkeen kaikilta allekirjoittajilta.
decline-reason = Syy
decline-submit = Kieltäydy
decline-back = Takaisin asiakirjaan
signed-heading = Olet allekirjoittanut
signed-body = Kiitos. Allekirjoituksesi asiakirjaan ”{ $title }” tallennettiin { $date } UTC.
signed-waiting = Allekirjoitettu asiakirja on ladattavissa täältä, kun kaikki ovat allekirjoittaneet ja se on sinetöity.
signed-download = Lataa allekirjoitettu asiakirja
signed-unlock = Anna kutsusähköpostisi pääsykoodi ladataksesi allekirjoitetun asiakirjan.
gone-heading = Linkki ei ole enää voimassa
gone-expired = Tämä allekirjoituspyyntö on vanhentunut.
gone-cancelled = Lähettäjä peruutti tämän allekirjoituspyynnön.
gone-declined = Tästä allekirjoituspyynnöstä kieltäydyttiin, joten sitä ei voi enää allekirjoittaa.
gone-invalidated = Tämä allekirjoituslinkki ei ole enää voimassa.
turn-heading = Ei vielä sinun vuorosi
turn-body = Muut allekirjoittajat allekirjoittavat asiakirjan ”{ $title }” ennen sinua. Linkki toimii, kun on sinun vuorosi.
notfound-heading = Linkkiä ei löydy
notfound-body = Tarkista, että avasit kutsun linkin kokonaan.
ratelimit-heading = Liian monta pyyntöä
ratelimit-body = Tätä sivua pyydettiin liian usein lyhyessä ajassa. Odota hetki ja lataa sivu sitten uudelleen.
error-heading = Yritä uudelleen
csrf-failed = Lomake vanhentui. Palaa asiakirjaan ja yritä uudelleen.
error-missing = Täytä kenttä ”{ $field }”.
error-invalid = Tarkista kenttä ”{ $field }”.
gone-rotated = Tämä linkki on korvattu uudemmalla. Käytä viimeisintä saamaasi linkkiä.
session-cancel = Peruuta ja palaa
document-page = Sivu { $n } / { $count }
document-more-pages = { $count ->
    [one] Yksi sivu lisää on ladattavassa asiakirjassa.
   *[other] { $count } sivua lisää on ladattavassa asiakirjassa.
}
page-footer = Signeur hoitaa tämän allekirjoituksen organisaation { $org } puolesta.
