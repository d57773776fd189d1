{#- The catalogue the touchpoints were matched against in this build: built
    after them, so the next incremental build of int_feedback__touchpoints
    can tell whether the catalogue changed since (and then recompute every
    touchpoint whose product came from its text). -#}
-- depends_on: {{ ref('int_feedback__touchpoints') }}
{{ feedback_catalogue(ref('stg_shop__order_items')) }}
