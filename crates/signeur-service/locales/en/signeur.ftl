invitation-subject = { $org } asks you to sign a document
greeting = Hello { $name },
greeting-anonymous = Hello,
invitation-intro = { $org } asks you to sign “{ $title }”.
invitation-message = Message from { $org }:
invitation-open = Open the document
invitation-code = Your access code:
invitation-code-hint = Enter this code when the signing page asks for it. Do not share it.
invitation-expires = The link expires on { $date }.
footer = This message was sent by Signeur on behalf of { $org }.
test-subject = Signeur test message
test-body = This is a test message from Signeur. Your mail settings work.
invitation-resent = This is a new invitation: the access code in any earlier message no longer works.
notice-reason = Reason:
completed-subject = { $org }: the document has been signed
completed-body = Everyone has signed “{ $title }”. The sealed document is ready.
completed-download = Download the signed document
declined-subject = { $org }: the signing was declined
declined-body = { $signer } declined to sign “{ $title }”. The request is closed.
cancelled-subject = { $org } cancelled a signing request
cancelled-body = { $org } cancelled “{ $title }”. The link in the earlier message no longer works.
reminder-subject = Reminder: { $org } is waiting for your signature
reminder-body = “{ $title }” is still waiting for your signature. The link expires on { $date }.
page-title = Sign “{ $title }”
page-from = { $org } asks you to sign “{ $title }”.
lang-switch = Language
gate-heading = Enter your access code
gate-help = We emailed you a six-digit access code together with this link. Enter it to open the document.
gate-label = Access code
gate-submit = Verify
gate-wrong = { $left ->
    [one] That code is not right. You have one more try.
   *[other] That code is not right. You have { $left } more tries.
}
locked-heading = Too many wrong codes
locked-body = This link is locked until { $until } UTC. Try again then, or ask the sender to resend the invitation for a new code.
document-heading = Document
document-pages = { $count ->
    [one] 1 page
   *[other] { $count } pages
}
document-download = Download the document (PDF)
sign-heading = Your signature
sign-name = Full name
sign-representing = Signing on behalf of an organization (optional)
sign-entity = Organization
sign-role = Role
sign-entity-id = Organization ID
sign-draw = Draw your signature (optional)
sign-clear = Clear the drawing
sign-consent = I have read the document and I agree to sign it electronically.
sign-submit = Sign
decline-open = Decline
decline-heading = Decline to sign
decline-help = Tell the sender why you decline. The request will then be closed for every signer.
decline-reason = Reason
decline-submit = Decline
decline-back = Back to the document
signed-heading = You have signed
signed-body = Thank you. Your signature on “{ $title }” was recorded on { $date } UTC.
signed-waiting = The signed document will be available here once everyone has signed and it has been sealed.
signed-download = Download the signed document
signed-unlock = Enter the access code from your invitation email to download the signed document.
gone-heading = This link no longer works
gone-expired = This signing request has expired.
gone-cancelled = The sender cancelled this signing request.
gone-declined = This signing request was declined, so it can no longer be signed.
gone-invalidated = This signing link is no longer valid.
turn-heading = Not your turn yet
turn-body = Other signers sign “{ $title }” before you. This link will work when it is your turn.
notfound-heading = Link not found
notfound-body = Check that you opened the whole link from your invitation.
ratelimit-heading = Too many requests
ratelimit-body = This page was asked for too often in a short time. Wait a moment, then reload it.
error-heading = Please try again
csrf-failed = The form expired. Go back to the document and try again.
error-missing = Please fill in “{ $field }”.
error-invalid = Please check “{ $field }”.
gone-rotated = This link was replaced by a newer one. Use the most recent link you were sent.
session-cancel = Cancel and go back
document-page = Page { $n } of { $count }
document-more-pages = { $count ->
    [one] One more page is in the downloadable document.
   *[other] { $count } more pages are in the downloadable document.
}
page-footer = Signeur runs this signing on behalf of { $org }.
