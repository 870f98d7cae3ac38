invitation-subject = { $org } vous invite à signer un document
greeting = Bonjour { $name },
greeting-anonymous = Bonjour,
invitation-intro = { $org } vous invite à signer « { $title } ».
invitation-message = Message de { $org } :
invitation-open = Ouvrir le document
invitation-code = Votre code d’accès :
invitation-code-hint = Saisissez ce code lorsque la page de signature le demande. Ne le communiquez à personne.
invitation-expires = Le lien expire le { $date }.
footer = Ce message a été envoyé par Signeur pour le compte de { $org }.
test-subject = Message de test Signeur
test-body = Ceci est un message de test de Signeur. Vos réglages de messagerie fonctionnent.
invitation-resent = Ceci est une nouvelle invitation : le code d’accès des messages précédents ne fonctionne plus.
notice-reason = Motif :
completed-subject = { $org } : le document a été signé
completed-body = Tout le monde a signé « { $title } ». Le document scellé est prêt.
completed-download = Télécharger le document signé
declined-subject = { $org } : la signature a été refusée
declined-body = { $signer } a refusé de signer « { $title } ». La demande est close.
cancelled-subject = { $org } a annulé une demande de signature
cancelled-body = { $org } a annulé « { $title } ». Le lien du message précédent ne fonctionne plus.
reminder-subject = Rappel : { $org } attend votre signature
reminder-body = « { $title } » attend toujours votre signature. Le lien expire le { $date }.
page-title = Signer « { $title } »
page-from = { $org } vous invite à signer « { $title } ».
lang-switch = Langue
gate-heading = Saisissez votre code d’accès
gate-help = Nous vous avons envoyé par e-mail un code d’accès à six chiffres avec ce lien. Saisissez-le pour ouvrir le document.
gate-label = Code d’accès
gate-submit = Vérifier
gate-wrong = { $left ->
    [one] Ce code n’est pas correct. Il vous reste un essai.
   *[other] Ce code n’est pas correct. Il vous reste { $left } essais.
}
locked-heading = Trop de codes erronés
locked-body = Ce lien est verrouillé jusqu’au { $until } UTC. Réessayez ensuite, ou demandez à l’expéditeur de renvoyer l’invitation avec un nouveau code.
document-heading = Document
document-pages = { $count ->
    [one] 1 page
   *[other] { $count } pages
}
document-download = Télécharger le document (PDF)
sign-heading = Votre signature
sign-name = Nom complet
sign-representing = Signer au nom d’une organisation (facultatif)
sign-entity = Organisation
sign-role = Fonction
sign-entity-id = Identifiant de l’organisation
sign-draw = Dessinez votre signature (facultatif)
sign-clear = Effacer le dessin
sign-consent = J’ai lu le document et j’accepte de le signer électroniquement.
sign-submit = Signer
decline-open = Refuser
decline-heading = Refuser de signer
decline-help = Indiquez à l’expéditeur pourquoi vous refusez. La demande sera ensuite close pour tous les signataires.
decline-reason = Motif
decline-submit = Refuser
decline-back = Retour au document
signed-heading = Vous avez signé
signed-body = Merci. Votre signature de « { $title } » a été enregistrée le { $date } UTC.
signed-waiting = Le document signé sera disponible ici dès que tout le monde aura signé et qu’il aura été scellé.
signed-download = Télécharger le document signé
signed-unlock = Saisissez le code d’accès reçu dans votre e-mail d’invitation pour télécharger le document signé.
gone-heading = Ce lien ne fonctionne plus
gone-expired = Cette demande de signature a expiré.
gone-cancelled = L’expéditeur a annulé cette demande de signature.
gone-declined = Cette demande de signature a été refusée ; elle ne peut plus être signée.
gone-invalidated = Ce lien de signature n’est plus valide.
turn-heading = Ce n’est pas encore votre tour
turn-body = D’autres signataires signent « { $title } » avant vous. Ce lien fonctionnera quand ce sera votre tour.
notfound-heading = Lien introuvable
notfound-body = Vérifiez que vous avez ouvert le lien complet de votre invitation.
ratelimit-heading = Trop de requêtes
ratelimit-body = Cette page a été demandée trop souvent en peu de temps. Patientez un instant, puis rechargez-la.
error-heading = Veuillez réessayer
csrf-failed = Le formulaire a expiré. Revenez au document et réessayez.
error-missing = Veuillez remplir « { $field } ».
error-invalid = Veuillez vérifier « { $field } ».
gone-rotated = Ce lien a été remplacé par un plus récent. Utilisez le dernier lien que vous avez reçu.
session-cancel = Annuler et revenir
document-page = Page { $n } sur { $count }
document-more-pages = { $count ->
    [one] Une page de plus figure dans le document à télécharger.
   *[other] { $count } pages de plus figurent dans le document à télécharger.
}
page-footer = Signeur gère cette signature pour le compte de { $org }.
